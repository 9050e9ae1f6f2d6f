//! The store of mailbox accounts.

use async_trait::async_trait;
use pushmail_core::types::{Account, Address, DomainName, Link, Page};

use crate::StoreResult;

/// What [`crate::Store::update_account`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountUpdate {
    /// Written, as the returned record (its revision one higher).
    Updated(Account),
    NotFound,
    /// The stored record is no longer the revision the update was made from: read it again.
    Conflict,
}

/// What [`crate::Store::delete_account`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDelete {
    NotFound,
    /// Deleted; with the link as it was, if the account was integrated.
    Deleted {
        live_link: Option<Link>,
    },
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>>;
    /// Creates the account or replaces it whole, whatever was there (seeding and tests only).
    async fn put_account(&self, account: &Account) -> StoreResult<()>;
    /// Creates the account; false if it exists.
    async fn create_account(&self, account: &Account) -> StoreResult<bool>;
    /// Replaces an existing account if the stored revision is still `account.revision`, and
    /// raises the revision: a read-modify-write that loses a race is refused, never applied.
    async fn update_account(&self, account: &Account) -> StoreResult<AccountUpdate>;
    /// Deletes the account and its link record, and purges what it leaves behind (its mailbox,
    /// notices, kept mail). With no account at the address, finishes a purge a crash or a time
    /// limit cut short, and answers `NotFound`.
    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete>;
    /// A domain's accounts by address, in pages.
    /// A domain's accounts by address, only those whose address starts with `prefix` if given.
    async fn list_accounts(
        &self,
        domain: &DomainName,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>>;
}
