//! The store of mailbox accounts.

use async_trait::async_trait;
use pushmail_core::types::{Account, Address, DomainName, Link, Page};

use crate::StoreResult;

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
}
