//! The store of admin tokens and the audit trail.

use async_trait::async_trait;
use pushmail_core::types::{AdminToken, AuditEntry, DomainName, Page};

use crate::StoreResult;

/// What [`crate::Store::delete_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDelete {
    Deleted,
    NotFound,
    /// It is the last server-wide token: deleting it would leave the API without an admin.
    LastServerToken,
}

#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn put_token(&self, token: &AdminToken) -> StoreResult<()>;
    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>>;
    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>>;
    /// Deletes a token, unless it is the last server-wide one (checked atomically).
    async fn delete_token(&self, id: &str) -> StoreResult<TokenDelete>;
    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// One domain's audit (or the server-wide entries, for `None`), newest first, in pages.
    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>>;
}
