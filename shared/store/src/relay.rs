//! The queue of submitted mail for other domains: each message waits here, durably, until the
//! relay (SES or a smarthost) has taken it for every recipient or it is given up and bounced.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::types::Address;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// One queued message; its bytes are kept beside it ([`RelayStore::relay_body`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayJob {
    pub id: String,
    /// The submitting account: the envelope sender, and where a bounce goes.
    pub sender: Address,
    /// Recipients the relay has not yet taken.
    pub recipients: Vec<Address>,
    pub created_at: DateTime<Utc>,
    /// Not tried again before this (also the lease of a worker holding it).
    pub not_before: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[async_trait]
pub trait RelayStore: Send + Sync {
    /// Queues a message, durably, with its bytes.
    async fn enqueue_relay(&self, job: &RelayJob, raw: &[u8]) -> StoreResult<()>;
    /// Jobs due at `now`, at most `limit`: those due longest first, read from the queue's due
    /// order (never the whole queue), oldest first among them.
    async fn due_relays(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RelayJob>>;
    /// Takes a job until `lease_until` if it is due at `now` and nobody else holds it.
    async fn claim_relay(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<RelayJob>>;
    async fn relay_body(&self, id: &str) -> StoreResult<Option<Vec<u8>>>;
    /// An attempt left `remaining` recipients to try again at `retry_at`.
    async fn defer_relay(
        &self,
        id: &str,
        remaining: &[Address],
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;
    /// Done with the job (relayed, or bounced): drops it and its bytes.
    async fn finish_relay(&self, id: &str) -> StoreResult<()>;
}
