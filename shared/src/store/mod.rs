//! Persistence behind one trait, so that DynamoDB (on AWS) and an embedded engine (on one
//! machine) are interchangeable. Every ordering rule is enforced atomically by the backend
//! (a conditional write or a transaction), never by a read followed by a write.

mod dynamo;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::types::{
    Account, ActivationJob, Address, Domain, DomainName, Link, PushSecret, ServerSettings,
};

pub use dynamo::{DynamoStore, DynamoStoreConfig};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed or could not be reached; the operation may or may not have happened.
    #[error("store backend error: {0}")]
    Backend(String),
    /// A stored item could not be read back into its type.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What [`Store::insert_link`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkInsert {
    /// The link is now current, and its activation mail is queued in the outbox.
    Inserted,
    /// Nothing changed: the current link (linked or tombstone) has a generation at least as high.
    Conflict(Link),
}

/// What [`Store::unlink`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlink {
    /// The link was live and is now a tombstone.
    Unlinked(Link),
    /// No live link: nothing recorded, or already unlinked.
    NotLinked,
    /// A live link newer than the request exists; nothing changed.
    Newer(Link),
}

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
pub trait Store: Send + Sync {
    // --- settings, domains, accounts -------------------------------------------------------
    async fn server_settings(&self) -> StoreResult<ServerSettings>;
    async fn put_server_settings(&self, settings: &ServerSettings) -> StoreResult<()>;
    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>>;
    async fn put_domain(&self, domain: &Domain) -> StoreResult<()>;
    /// The domain's live push secrets, newest first.
    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>>;
    async fn add_push_secret(&self, domain: &DomainName, secret: &PushSecret) -> StoreResult<()>;
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>>;
    async fn put_account(&self, account: &Account) -> StoreResult<()>;

    // --- push links ------------------------------------------------------------------------
    /// The account's link, live or tombstone, read consistently.
    async fn link(&self, address: &Address) -> StoreResult<Option<Link>>;
    /// Makes `link` current, atomically, if no link exists or the current one (live or
    /// tombstone) has a lower generation; with it, queues `activation` in the outbox.
    async fn insert_link(&self, link: &Link, activation: &ActivationJob)
    -> StoreResult<LinkInsert>;
    /// Turns the live link into a tombstone if it is not newer than (`registration`,
    /// `generation`): a lower generation, or the same generation and registration.
    async fn unlink(
        &self,
        address: &Address,
        registration: &str,
        generation: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<Unlink>;

    // --- activation outbox -----------------------------------------------------------------
    /// Takes the job for `lease_until` if it is due at `now` and nobody else holds it.
    async fn claim_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ActivationJob>>;
    /// Jobs due at `now`, oldest first, at most `limit`.
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

    // --- guards ----------------------------------------------------------------------------
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

    // --- listener liveness -----------------------------------------------------------------
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
