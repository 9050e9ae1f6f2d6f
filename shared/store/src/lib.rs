//! Persistence behind one trait, so that DynamoDB (on AWS) and an embedded engine (on one
//! machine) are interchangeable. Every ordering rule is enforced atomically by the backend
//! (a conditional write or a transaction), never by a read followed by a write.

mod dynamo;
mod embedded;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Domain, DomainName,
    Link, Page, PushSecret, ServerSettings, StoredMail,
};

pub use dynamo::{DynamoStore, DynamoStoreConfig};
pub use embedded::EmbeddedStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed or could not be reached; the operation may or may not have happened.
    #[error("store backend error: {0}")]
    Backend(String),
    /// A stored item could not be read back into its type.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
    /// A page cursor that this store did not hand out for this listing.
    #[error("the cursor is not valid for this listing")]
    BadCursor,
}

/// What [`Store::add_push_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAdd {
    Added,
    NoSuchDomain,
    /// The domain already has the maximum number of live secrets.
    TooMany,
}

/// What [`Store::delete_domain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDelete {
    Deleted,
    NotFound,
    /// The domain still has accounts; delete them first.
    HasAccounts,
}

/// What [`Store::delete_account`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDelete {
    NotFound,
    /// Deleted; with the link as it was, if the account was integrated.
    Deleted {
        live_link: Option<Link>,
    },
}

/// Which integrated accounts to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkQuery {
    /// One domain's, or every domain's.
    pub domain: Option<DomainName>,
    pub activation: Option<ActivationState>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// A store failure as the push protocol answers it: 500 `internal`, logged with its cause,
/// which the caller is never shown.
impl From<StoreError> for pushmail_core::protocol::Refusal {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store failure");
        Self::new(
            pushmail_core::protocol::ErrorCode::Internal,
            "the server could not complete the request; try again",
        )
    }
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
    /// Creates the domain or replaces its settings (its secrets and accounts stay).
    async fn put_domain(&self, domain: &Domain) -> StoreResult<()>;
    /// Creates the domain; false if it exists.
    async fn create_domain(&self, domain: &Domain) -> StoreResult<bool>;
    /// Replaces an existing domain's settings; false if there is no such domain.
    async fn update_domain(&self, domain: &Domain) -> StoreResult<bool>;
    /// Every domain, by name.
    async fn list_domains(&self) -> StoreResult<Vec<Domain>>;
    /// Deletes a domain without accounts, with its secrets.
    async fn delete_domain(&self, name: &DomainName) -> StoreResult<DomainDelete>;
    /// The domain's live push secrets, newest first.
    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>>;
    /// Adds a secret unless the domain already has `max_live` of them (checked atomically).
    async fn add_push_secret(
        &self,
        domain: &DomainName,
        secret: &PushSecret,
        max_live: u32,
    ) -> StoreResult<SecretAdd>;
    /// Retires (deletes) one secret; false if the domain has no secret with that id.
    async fn retire_push_secret(&self, domain: &DomainName, id: &str) -> StoreResult<bool>;
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>>;
    /// Creates the account or replaces it whole.
    async fn put_account(&self, account: &Account) -> StoreResult<()>;
    /// Creates the account; false if it exists.
    async fn create_account(&self, account: &Account) -> StoreResult<bool>;
    /// Replaces an existing account; false if there is no such account.
    async fn update_account(&self, account: &Account) -> StoreResult<bool>;
    /// Deletes the account and its link record.
    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete>;
    /// A domain's accounts by address, in pages.
    async fn list_accounts(
        &self,
        domain: &DomainName,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>>;

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

    /// Integrated accounts (live links), newest first, in pages.
    async fn list_links(&self, query: &LinkQuery) -> StoreResult<Page<Link>>;
    /// Unlinks the live link whatever its generation (an admin's removal); returns it as it was.
    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>>;
    /// Queues the current subscription's activation mail again (marking the link pending);
    /// false if the account has no live link.
    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool>;

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

    // --- admin tokens and audit ----------------------------------------------------------
    async fn put_token(&self, token: &AdminToken) -> StoreResult<()>;
    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>>;
    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    async fn delete_token(&self, id: &str) -> StoreResult<bool>;
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// One domain's audit (or the server-wide entries, for `None`), newest first, in pages.
    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>>;

    // --- local mail --------------------------------------------------------------------------
    /// Keeps a system mail for its recipient (when no mail service is configured).
    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()>;
    /// The mails kept for `to`, newest first, at most `limit`.
    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>>;

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
