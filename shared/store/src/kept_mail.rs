//! The store of system mail kept instead of sent.

use async_trait::async_trait;
use pushmail_core::types::{Address, StoredMail};

use crate::StoreResult;

#[async_trait]
pub trait KeptMailStore: Send + Sync {
    /// Keeps a system mail for its recipient (when no mail service is configured).
    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()>;
    /// The mails kept for `to`, newest first, at most `limit`.
    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>>;
}
