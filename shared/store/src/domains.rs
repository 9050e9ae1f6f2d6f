//! The store of server settings, domains and their push secrets.

use async_trait::async_trait;
use pushmail_core::types::{Domain, DomainName, PushSecret, ServerSettings};

use crate::StoreResult;

/// What [`crate::Store::add_push_secret`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAdd {
    Added,
    NoSuchDomain,
    /// The domain already has the maximum number of live secrets.
    TooMany,
}

/// What [`crate::Store::delete_domain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDelete {
    Deleted,
    NotFound,
    /// The domain still has accounts; delete them first.
    HasAccounts,
}

#[async_trait]
pub trait DomainStore: Send + Sync {
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
}
