//! The store of admin tokens and the audit trail.

use async_trait::async_trait;
use pushmail_core::types::{AdminToken, AuditEntry, DomainName, Page};

use crate::StoreResult;

#[async_trait]
pub trait AdminStore: Send + Sync {
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
}
