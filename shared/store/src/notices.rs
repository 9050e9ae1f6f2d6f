//! The store of new-mail notices: recorded by [`crate::MailboxStore::deliver`] in the same
//! transaction as the message, taken off by the dispatcher once the callback has them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::notice::Notice;
use pushmail_core::types::Address;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// Why a notice was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeDrop {
    /// Its subscription was superseded or unlinked: the old callback is never told.
    Stale,
    /// Still not delivered after the retry period (24 h).
    Expired,
}

/// The last failed attempt for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeFailure {
    pub at: DateTime<Utc>,
    /// The callback's HTTP status, or what kept it from answering.
    pub error: String,
}

/// One integrated account's notices, for the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountNotices {
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_failure: Option<NoticeFailure>,
    #[serde(skip)]
    pub pending: u64,
}

/// Server-wide counts, for the admin API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeCounts {
    pub pending: u64,
    pub delivered: u64,
    /// Failed attempts (each retried, until the notice expires).
    pub failed_attempts: u64,
    pub dropped_stale: u64,
    pub dropped_expired: u64,
}

#[async_trait]
pub trait NoticeStore: Send + Sync {
    /// Accounts whose oldest pending notice is due at `now`, the longest due first: at most
    /// `limit`. Only an account's oldest notice counts (its later ones wait behind it), so one
    /// account's backlog, or many accounts waiting for their retries, never hide an account
    /// whose notice is due.
    async fn due_notice_accounts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Address>>;
    /// When the mail of the longest waiting notice arrived (over all accounts; `None`: none
    /// waits): the backlog gauge.
    async fn oldest_waiting_notice(&self) -> StoreResult<Option<DateTime<Utc>>>;
    /// The dispatcher is done with the account for now: its place in the due order is brought
    /// up to date from its pending notices (on a store that does not keep the order in the
    /// same transactions as the notices; those keep it exact and do nothing here).
    async fn settle_notice_queue(&self, _account: &Address) -> StoreResult<()> {
        Ok(())
    }
    /// One account's pending notices in `seq` order, at most `limit`, read afresh.
    async fn account_pending_notices(
        &self,
        account: &Address,
        limit: usize,
    ) -> StoreResult<Vec<Notice>>;
    /// Takes the notice for one sender until `lease_until`, if it is due at `now` and no other
    /// dispatcher (another process, the sweeper) holds it: false if it is held or gone.
    async fn lease_notice(
        &self,
        notice: &Notice,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// The callback took it: drops it and records the time for its account.
    async fn notice_delivered(&self, notice: &Notice, at: DateTime<Utc>) -> StoreResult<()>;
    /// An attempt failed: counts it and keeps the notice until `retry_at`.
    async fn notice_failed(
        &self,
        notice: &Notice,
        retry_at: DateTime<Utc>,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn drop_notice(&self, notice: &Notice, why: NoticeDrop) -> StoreResult<()>;
    async fn account_notices(&self, account: &Address) -> StoreResult<AccountNotices>;
    async fn notice_counts(&self) -> StoreResult<NoticeCounts>;
}
