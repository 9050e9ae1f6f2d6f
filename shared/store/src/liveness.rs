//! The store of listener heartbeats.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreResult;

#[async_trait]
pub trait LivenessStore: Send + Sync {
    /// A listener (`kind` = "imap", "smtp") says it is alive.
    async fn record_heartbeat(
        &self,
        kind: &str,
        instance: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The newest heartbeat of any instance of `kind`.
    async fn latest_heartbeat(&self, kind: &str) -> StoreResult<Option<DateTime<Utc>>>;
}
