//! New-mail notices (spec §4): which new messages are announced, what a notice says, and how its
//! retries are spaced. The store records a notice with the message; the dispatcher sends it.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::folder::FolderName;
use crate::types::{Account, Address, Link};

/// One NEW_MAIL notice waiting to be delivered. Its `id` is fixed when it is recorded, so every
/// retry carries the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub id: String,
    pub subscription_id: String,
    pub registration: String,
    pub email: Address,
    pub folder: FolderName,
    pub uid: u32,
    pub uid_validity: u32,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub received: DateTime<Utc>,
    /// The account's change counter of the message: a subscription's notices go out in this
    /// order.
    pub seq: u64,
    pub attempts: u32,
    /// Not sent before this.
    pub not_before: DateTime<Utc>,
}

impl Notice {
    /// The notice for a message just stored for an account linked by `link`, or `None` when
    /// nothing is to be announced: the link is not live, or the folder is not pushed.
    #[allow(clippy::too_many_arguments)]
    pub fn for_delivery(
        account: &Account,
        link: Option<&Link>,
        folder: &FolderName,
        uid: u32,
        uid_validity: u32,
        seq: u64,
        envelope: &crate::mailbox::Envelope,
        received: DateTime<Utc>,
    ) -> Option<Self> {
        let link = link.filter(|link| link.is_linked())?;
        if !account.pushes(folder) {
            return None;
        }
        Some(Self {
            id: format!("nm_{}_{uid_validity}_{uid}", link.subscription_id),
            subscription_id: link.subscription_id.clone(),
            registration: link.registration.clone(),
            email: account.address.clone(),
            folder: folder.clone(),
            uid,
            uid_validity,
            from: envelope.from.clone(),
            subject: envelope.subject.clone(),
            received,
            seq,
            attempts: 0,
            not_before: received,
        })
    }

    /// The JSON body spec §4 fixes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::json!({
            "type": "NEW_MAIL",
            "id": self.id,
            "subscription": self.subscription_id,
            "registration": self.registration,
            "email": self.email.as_str(),
            "folder": self.folder.as_str(),
            "uid": self.uid,
            "uidvalidity": self.uid_validity,
            "from": self.from,
            "subject": self.subject,
            "received": self.received.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
        .to_string()
        .into_bytes()
    }
}

impl Account {
    /// Whether new mail in `folder` is pushed: INBOX always, and the folders the user or admin
    /// picked (compared as folder names: `inbox` is INBOX).
    pub fn pushes(&self, folder: &FolderName) -> bool {
        folder.is_inbox()
            || self
                .pushed_folders
                .iter()
                .any(|name| FolderName::parse(name).is_ok_and(|name| name == *folder))
    }
}

/// How long notices are retried, and how the waits grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// After this, a notice still not delivered is dropped (spec §4: 24 h).
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(2),
            max_retry: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// When to try again after `attempts` failures: the wait doubles from `first_retry` up to
    /// `max_retry`, and a random part of up to half of it is added (`jitter` in 0..1) so that
    /// callbacks coming back up are not hit by every retry at once.
    pub fn retry_at(&self, attempts: u32, now: DateTime<Utc>, jitter: f64) -> DateTime<Utc> {
        let base = self
            .first_retry
            .saturating_mul(2u32.saturating_pow(attempts.min(20)))
            .min(self.max_retry);
        let wait = base.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 2.0);
        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(10))
    }

    /// Whether a notice of a message received at `received` is too old to try again.
    pub fn expired(&self, received: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        (now - received).to_std().unwrap_or_default() >= self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let wait =
            |attempts, jitter| (policy.retry_at(attempts, now, jitter) - now).num_milliseconds();
        assert_eq!(wait(0, 0.0), 2_000);
        assert_eq!(wait(1, 0.0), 4_000);
        assert_eq!(wait(1, 1.0), 6_000);
        assert_eq!(wait(30, 0.0), 600_000);
        assert!(policy.expired(now - chrono::Duration::hours(25), now));
        assert!(!policy.expired(now - chrono::Duration::hours(23), now));
    }
}
