//! The store of the replay guard and failed-credential counters.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::types::Address;

use crate::StoreResult;

/// Where a credential check happens. Each surface counts its own failures, so that wrong
/// passwords typed into one (a user's self-service login) do not lock the account out of
/// another (the device's signed SUBSCRIBE): see docs/security.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Subscribe,
    SelfService,
    /// AUTH on the SMTP submission listener.
    Submission,
    /// LOGIN on the IMAP listener.
    Imap,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::SelfService => "self",
            Self::Submission => "smtp",
            Self::Imap => "imap",
        }
    }
}

/// A counter scope for rate limiting of credential checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureScope<'a> {
    Account(Surface, &'a Address),
    Source(Surface, &'a str),
}

impl FailureScope<'_> {
    pub fn key(&self) -> String {
        match self {
            Self::Account(surface, address) => format!("account#{}#{address}", surface.as_str()),
            Self::Source(surface, source) => format!("source#{}#{source}", surface.as_str()),
        }
    }
}

/// How long a reserved credential check may stay in progress before it no longer counts: far
/// longer than a check takes (a hash well under a second, store calls bounded at 65 s each are
/// the outlier), far shorter than the failure window.
pub const RESERVATION_SECS: i64 = 120;

#[async_trait]
pub trait GuardStore: Send + Sync {
    /// Records a signature as seen until `expires_at`. False if it was seen and has not expired.
    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Failed credential checks of `scope` in the window starting at `window_start` (not the
    /// checks still in progress).
    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32>;
    /// Reserves one credential check in the window, atomically: answers true and counts it if
    /// fewer than `limit` checks are in progress or have failed, else changes nothing and
    /// answers false. A check is reserved before the password is hashed, so parallel guesses
    /// cannot all pass the limit. A check that succeeds gives its reservation back
    /// ([`GuardStore::release_attempt`]); one that fails keeps it and is counted as failed
    /// ([`GuardStore::count_failure`]). The counter is dropped after `expires_at`.
    ///
    /// Reservations expire: each one moves the scope's `pending_until` to `now` +
    /// [`RESERVATION_SECS`], and once that has passed every check still counted as in progress
    /// is taken to have died with its process (a crash, a kill) and no longer counts; only the
    /// failures do. A crash never locks an account out for the rest of the window.
    async fn reserve_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives one reservation back (a check that succeeded, or never ran); never below zero.
    async fn release_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Counts a check as failed; a reserved one's reservation stays taken for the window. A
    /// counter it makes (a source's, never reserved) is dropped after `expires_at` as
    /// [`reserve_attempt`](Self::reserve_attempt)'s are: every failure from a new address must not
    /// leave a row for good.
    async fn count_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()>;
}
