//! The store of mailboxes: folders, messages and their bodies, and each account's change log
//! (so that listeners on other machines can learn what changed; the IMAP listener's IDLE reads
//! it). On DynamoDB the bodies are in S3.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, Folder, MessageMeta, NewMessage};
use pushmail_core::types::Address;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// What [`MailboxStore::deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored, durably, under this UID; `change` is the account's change counter after it;
    /// `noticed`: a new-mail notice was recorded with it (the account is integrated and the
    /// folder pushed).
    Stored {
        uid: u32,
        uid_validity: u32,
        modseq: u64,
        change: u64,
        noticed: bool,
    },
    NoSuchFolder,
    /// The account's quota would be exceeded: nothing stored.
    OverQuota,
}

/// One change of an account's mailboxes, numbered in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub counter: u64,
    pub folder: FolderName,
    pub uid: u32,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    /// The message's flags changed.
    Flags,
}

#[async_trait]
pub trait MailboxStore: Send + Sync {
    /// Creates the default folders (INBOX, Sent, Drafts, Trash, Junk) the account lacks.
    async fn create_default_folders(&self, account: &Address, at: DateTime<Utc>)
    -> StoreResult<()>;
    /// Creates a folder (no special use) unless it exists; an existing one is left as it is.
    async fn create_folder(
        &self,
        account: &Address,
        name: &FolderName,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The account's folders, by name.
    async fn folders(&self, account: &Address) -> StoreResult<Vec<Folder>>;
    async fn folder(&self, account: &Address, name: &FolderName) -> StoreResult<Option<Folder>>;
    /// Stores a message in a folder, in one atomic and durable write with everything that
    /// depends on it: its UID (the folder's `uid_next`, so UIDs only grow and are never reused),
    /// the folder's counters, the account's usage and its change log, and the new-mail notice
    /// (`Notice::for_delivery`: a live link and a pushed folder). Refused, with nothing
    /// stored, when it would take the account's usage over `quota_bytes`.
    async fn deliver(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery>;
    /// Changes a message's flags in one atomic write with the folder's HIGHESTMODSEQ and the
    /// account's change log; the flags after it, or `None` if there is no such message.
    async fn update_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
    ) -> StoreResult<Option<Vec<String>>>;
    /// A folder's messages with a UID above `after_uid`, in UID order, at most `limit`.
    async fn messages(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageMeta>>;
    /// A message's raw bytes, as received.
    async fn message_body(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// The account's changes numbered above `after`, oldest first, at most `limit`.
    async fn changes_since(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>>;
    /// Bytes the account's messages take.
    async fn mailbox_usage(&self, account: &Address) -> StoreResult<u64>;
}
