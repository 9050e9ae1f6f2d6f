//! The store of push links (the integrated accounts).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, DomainName, Link, Page,
};

use crate::StoreResult;

/// Which integrated accounts to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkQuery {
    /// One domain's, or every domain's.
    pub domain: Option<DomainName>,
    pub activation: Option<ActivationState>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// What [`crate::Store::insert_link`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkInsert {
    /// The link is now current, and its activation mail is queued in the outbox.
    Inserted,
    /// Nothing changed: the current link (linked or tombstone) has a generation at least as high.
    Conflict(Link),
    /// Nothing changed: the account was deleted, disabled or given a new password since its
    /// password was checked.
    AccountChanged,
}

/// What [`crate::Store::unlink`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlink {
    /// The link was live and is now a tombstone.
    Unlinked(Link),
    /// No live link: nothing recorded, or already unlinked.
    NotLinked,
    /// A live link newer than the request exists; nothing changed.
    Newer(Link),
}

#[async_trait]
pub trait LinkStore: Send + Sync {
    /// The account's link, live or tombstone, read consistently.
    async fn link(&self, address: &Address) -> StoreResult<Option<Link>>;
    /// Makes `link` current, atomically, if there is no link or the current one (live or
    /// tombstone) yields to it (`Link::yields_to` its generation, signed at `signed_at`), and
    /// the account still admits the password check made against `checked`
    /// (`Account::still_admits`); with it, queues `activation` in the outbox.
    async fn insert_link(
        &self,
        link: &Link,
        activation: &ActivationJob,
        checked: &Account,
        signed_at: DateTime<Utc>,
    ) -> StoreResult<LinkInsert>;
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
    /// Unlinks the live link whatever its generation (an admin's removal, `Link::removed`);
    /// returns it as it was.
    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>>;
    /// Queues the current subscription's activation mail again (marking the link pending);
    /// false if the account has no live link.
    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool>;
}
