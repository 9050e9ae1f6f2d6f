//! The store of the activation-mail outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::types::ActivationJob;

use crate::StoreResult;

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Takes the job for `lease_until` if it is due at `now` and nobody else holds it.
    async fn claim_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ActivationJob>>;
    /// Jobs due at `now`, at most `limit`: those due longest first, read from the outbox's due
    /// order (never the whole outbox), oldest first among them.
    async fn due_activations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ActivationJob>>;
    /// The mail went out: drops the job and, if the subscription is still current, marks its
    /// link `sent`. Returns false when the subscription had been superseded or unlinked.
    async fn complete_activation(&self, job: &ActivationJob) -> StoreResult<bool>;
    /// Drops a job whose subscription is no longer current, without marking anything.
    async fn discard_activation(&self, subscription_id: &str) -> StoreResult<()>;
    /// The send failed: count it and keep the job until `retry_at`.
    async fn defer_activation(
        &self,
        subscription_id: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()>;
}
