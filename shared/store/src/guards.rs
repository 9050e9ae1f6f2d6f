//! The store of the replay guard and failed-credential counters.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::types::Address;

use crate::StoreResult;

/// A failure-counter scope for rate limiting of credential checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureScope<'a> {
    Account(&'a Address),
    Source(&'a str),
}

impl FailureScope<'_> {
    pub fn key(&self) -> String {
        match self {
            Self::Account(address) => format!("account#{address}"),
            Self::Source(source) => format!("source#{source}"),
        }
    }
}

#[async_trait]
pub trait GuardStore: Send + Sync {
    /// Records a signature as seen until `expires_at`. False if it was seen and has not expired.
    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Failed credential checks of `scope` in the window starting at `window_start`.
    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32>;
    /// Counts one more failure in the window; the counter is dropped after `expires_at`.
    async fn add_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<u32>;
    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()>;
}
