//! Persistence behind one trait per concern, so that DynamoDB (on AWS) and an embedded engine
//! (on one machine) are interchangeable. Every ordering rule is enforced atomically by the
//! backend (a conditional write or a transaction), never by a read followed by a write; the
//! rules themselves are methods of the core types (e.g. [`pushmail_core::types::Link`]).
//! Each backend has one file per concern, beside its keys and codec.

mod accounts;
mod admin;
mod change_log;
pub mod credentials;
mod domains;
mod dynamo;
mod embedded;
mod guards;
mod kept_mail;
mod links;
mod liveness;
mod mailbox;
mod notices;
mod outbox;
mod relay;

pub use accounts::{AccountDelete, AccountStore, AccountUpdate};
pub use admin::{AdminStore, TokenDelete};
pub use domains::{DomainDelete, DomainStore, SecretAdd};
pub use dynamo::{BodyStore, DynamoStore, DynamoStoreConfig, S3Bodies};
pub use embedded::EmbeddedStore;
pub use guards::{FailureScope, GuardStore, RESERVATION_SECS, Surface};
pub use kept_mail::KeptMailStore;
pub use links::{LinkInsert, LinkQuery, LinkStore, Unlink};
pub use liveness::LivenessStore;
pub use mailbox::{
    Change, ChangeKind, ChangeWindow, ChangesAfter, Copied, Delivery, FLAG_CHANGES_PER_CALL,
    FlagUpdate, FolderChange, MailboxStore, MessagePages,
};
pub use notices::{AccountNotices, NoticeCounts, NoticeDrop, NoticeFailure, NoticeStore};
pub use outbox::OutboxStore;
pub use relay::{RelayJob, RelayStore};

/// Every concern's store in one: what a process wires up and the services hold as
/// `Arc<dyn Store>`. Implemented by every type that implements each concern's trait.
pub trait Store:
    DomainStore
    + AccountStore
    + LinkStore
    + OutboxStore
    + GuardStore
    + AdminStore
    + KeptMailStore
    + LivenessStore
    + MailboxStore
    + NoticeStore
    + RelayStore
{
}

impl<T> Store for T where
    T: DomainStore
        + AccountStore
        + LinkStore
        + OutboxStore
        + GuardStore
        + AdminStore
        + KeptMailStore
        + LivenessStore
        + MailboxStore
        + NoticeStore
        + RelayStore
{
}

/// The traits, to call any store method on an `Arc<dyn Store>`: `use pushmail_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        AccountStore, AdminStore, DomainStore, GuardStore, KeptMailStore, LinkStore, LivenessStore,
        MailboxStore, NoticeStore, OutboxStore, RelayStore, Store,
    };
}

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
