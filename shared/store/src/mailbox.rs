//! The store of mailboxes: folders, messages and their bodies, and each account's change log
//! (so that listeners on other machines can learn what changed; the IMAP listener's IDLE reads
//! it). On DynamoDB the bodies are in S3.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{
    FlagChange, FlagMark, Flagged, Folder, MAX_MESSAGES_PER_APPEND, MessageMeta, MessageState,
    NewMessage,
};
use pushmail_core::message::header_end;
use pushmail_core::types::Address;

use crate::StoreResult;
pub use crate::change_log::{Change, ChangeKind, ChangeWindow, ChangesAfter};

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
    /// The account is gone, or is no longer the one the writer knew (deleted and created
    /// again): nothing stored.
    NoSuchAccount,
    /// The account's quota would be exceeded: nothing stored.
    OverQuota,
}

/// What [`MailboxStore::copy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Each message copied: (its UID in the source, its UID in the destination), and the
    /// destination's UIDVALIDITY (for UIDPLUS's COPYUID).
    Copied {
        uid_validity: u32,
        uids: Vec<(u32, u32)>,
    },
    NoSuchFolder,
    OverQuota,
}

/// What [`MailboxStore::delete_folder`] and [`MailboxStore::rename_folder`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderChange {
    Done,
    NoSuchFolder,
    /// RENAME's destination exists already.
    Exists,
    /// Deleting needs the folder empty, and a message arrived: try again.
    NotEmpty,
    /// RENAME into the folder's own subfolder.
    IntoItself,
}

/// What [`MailboxStore::change_flags`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagUpdate {
    /// The flags and the message's MODSEQ after the change (unchanged if it changed nothing).
    Applied {
        flags: Vec<String>,
        modseq: u64,
    },
    /// CONDSTORE's UNCHANGEDSINCE: the message changed after that MODSEQ; nothing written.
    Modified,
    NoSuchMessage,
}

/// How many messages a folder-wide operation reads or moves at a time.
const PAGE: usize = 500;

/// The most bytes of mail one write of a COPY holds (a message larger than it is written
/// alone): what the copy holds in memory at once.
const MOST_BYTES_PER_COPY_WRITE: u64 = 32 << 20;

/// The most messages one [`MailboxStore::change_flags_of`] changes: a bound on one write.
pub const FLAG_CHANGES_PER_CALL: usize = PAGE;

/// A folder's messages a page at a time, in UID order: what a folder-wide walk (SEARCH, STATUS
/// UNSEEN, every UID, a folder's delete) goes through, holding one page, never the whole folder.
pub struct MessagePages<'a, S: MailboxStore + ?Sized> {
    store: &'a S,
    account: &'a Address,
    folder: &'a FolderName,
    after: u32,
    size: usize,
}

impl<'a, S: MailboxStore + ?Sized> MessagePages<'a, S> {
    pub fn new(store: &'a S, account: &'a Address, folder: &'a FolderName) -> Self {
        Self {
            store,
            account,
            folder,
            after: 0,
            size: PAGE,
        }
    }

    /// Pages of `size` messages (at least one) rather than the default 500.
    pub fn of(self, size: usize) -> Self {
        Self {
            size: size.max(1),
            ..self
        }
    }

    /// From the first message after `uid` rather than the folder's first.
    pub fn after(self, uid: u32) -> Self {
        Self { after: uid, ..self }
    }

    /// The next page, `None` after the last.
    pub async fn next(&mut self) -> StoreResult<Option<Vec<MessageMeta>>> {
        let page = self
            .store
            .messages(self.account, self.folder, self.after, self.size)
            .await?;
        Ok(self.past(page, |meta| meta.uid))
    }

    /// The next page without envelopes (a walk that needs only flags and UIDs), `None` after
    /// the last.
    pub async fn next_states(&mut self) -> StoreResult<Option<Vec<MessageState>>> {
        let page = self
            .store
            .message_states(self.account, self.folder, self.after, self.size)
            .await?;
        Ok(self.past(page, |state| state.uid))
    }

    /// The next page as each message's UID and whether it is `\Seen`, `None` after the last.
    pub async fn next_seen_marks(&mut self) -> StoreResult<Option<Vec<FlagMark>>> {
        let page = self
            .store
            .seen_marks(self.account, self.folder, self.after, self.size)
            .await?;
        Ok(self.past(page, |mark| mark.uid))
    }

    /// The walk moved past `page` (`None`: it was empty, the walk is over).
    fn past<T>(&mut self, page: Vec<T>, uid: fn(&T) -> u32) -> Option<Vec<T>> {
        self.after = uid(page.last()?);
        Some(page)
    }
}

/// Messages stored in one write: at least one, at most [`MAX_MESSAGES_PER_APPEND`].
pub(crate) fn check_batch(messages: &[NewMessage]) -> StoreResult<()> {
    if messages.is_empty() || messages.len() > MAX_MESSAGES_PER_APPEND {
        return Err(crate::StoreError::Backend(format!(
            "{} messages to store at once: 1 to {MAX_MESSAGES_PER_APPEND}",
            messages.len()
        )));
    }
    Ok(())
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
    /// Stores a message the way [`deliver`](Self::deliver) does but without a new-mail notice:
    /// IMAP APPEND and COPY put mail where the user already knows it is.
    async fn append(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        self.append_all(account, folder, std::slice::from_ref(message), quota_bytes)
            .await
    }
    /// Stores several messages as [`append`](Self::append) does one, all or none in one write
    /// (IMAP MULTIAPPEND, RFC 3502), with consecutive UIDs in the order given; `Stored` tells
    /// the first UID. At least one message, at most [`MAX_MESSAGES_PER_APPEND`] (an error
    /// otherwise: the caller bounds what it asks).
    async fn append_all(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery>;
    /// APPEND into the folder the appending session has selected: stored as
    /// [`append_all`](Self::append_all) stores them, and the session claims `\Recent` up to the
    /// last new UID as [`claim_recent`](Self::claim_recent) does (it is the first told of them, at
    /// the end of its APPEND). The claimed UIDs with the delivery (none if nothing was stored).
    /// Two writes here; a backend that can does both in the one write.
    async fn append_all_claiming_recent(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
    ) -> StoreResult<(Delivery, std::ops::RangeInclusive<u32>)> {
        let delivery = self
            .append_all(account, folder, messages, quota_bytes)
            .await?;
        let claimed = match &delivery {
            Delivery::Stored { uid, .. } => {
                let last = uid.saturating_add(messages.len().saturating_sub(1) as u32);
                self.claim_recent(account, folder, last).await?
            }
            _ => Folder::recent_claimed(0, 0),
        };
        Ok((delivery, claimed))
    }
    /// Removes the messages with these UIDs (those that exist; with `only_deleted`, only those
    /// flagged `\Deleted` at the time of the write), each with an `expunged` change, the
    /// folder's count and the account's usage; the UIDs removed, in order.
    async fn expunge(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>>;
    /// Removes an empty folder; `NotEmpty` while it holds a message. A subscribed folder's
    /// subscription stays, in the same write ([`subscriptions_without_folder`](Self::subscriptions_without_folder)).
    async fn remove_empty_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange>;
    /// Subscribed names whose folder was deleted while subscribed and not created again: a
    /// subscription outlives its folder (RFC 3501 §6.3.6), until UNSUBSCRIBE.
    async fn subscriptions_without_folder(&self, account: &Address)
    -> StoreResult<Vec<FolderName>>;
    /// Marks a folder subscribed or not (IMAP SUBSCRIBE/UNSUBSCRIBE); false if there is no
    /// such folder (and, unsubscribing, no subscription left by a deleted one, which goes).
    async fn set_subscribed(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool>;
    /// IMAP's `\Recent` (RFC 3501 §2.3.2): claims for one read-write session the folder's
    /// messages up to UID `up_to` that no session claimed before, raising the folder's mark in
    /// one conditional write, so two sessions racing never both get a message. The UIDs this
    /// claim took (empty if none, or if there is no such folder).
    async fn claim_recent(
        &self,
        account: &Address,
        folder: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>>;
    /// Changes a message's flags in one atomic write with the folder's HIGHESTMODSEQ and the
    /// account's change log; with `unchanged_since` (CONDSTORE, RFC 7162 §3.1.3) only if the
    /// message's MODSEQ is not above it, checked in the same write.
    async fn change_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagUpdate>;
    /// [`change_flags`](Self::change_flags) for several messages of one folder (at most
    /// [`FLAG_CHANGES_PER_CALL`]), each message's outcome in the order given: in one write
    /// where the backend can (a STORE of fifty messages waits for one durable commit, not fifty),
    /// each message its own MODSEQ either way.
    async fn change_flags_of(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<FlagUpdate>> {
        let mut updates = Vec::with_capacity(uids.len());
        for &uid in uids {
            updates.push(
                self.change_flags(account, folder, uid, change, unchanged_since)
                    .await?,
            );
        }
        Ok(updates)
    }
    /// A folder's messages with a UID above `after_uid`, in UID order, at most `limit`.
    async fn messages(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageMeta>>;
    /// [`messages`](Self::messages) without their envelopes: cheaper where the backend can
    /// pass the envelope over.
    async fn message_states(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageState>> {
        let metas = self.messages(account, folder, after_uid, limit).await?;
        Ok(metas.into_iter().map(MessageMeta::into_state).collect())
    }
    /// [`message_states`](Self::message_states) for a reader that needs no flags (FETCH of
    /// neither FLAGS nor the text): each state's `flags` may be left empty, which spares a
    /// backend decoding them (a `String` each, most of a state's cost).
    async fn message_states_without_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageState>> {
        self.message_states(account, folder, after_uid, limit).await
    }
    /// Each message's UID and whether it is `\Seen`, in UID order from the first after
    /// `after_uid`, at most `limit`.
    async fn seen_marks(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<FlagMark>> {
        let states = self
            .message_states(account, folder, after_uid, limit)
            .await?;
        let mark = |state: MessageState| FlagMark {
            uid: state.uid,
            set: state.is_seen(),
        };
        Ok(states.into_iter().map(mark).collect())
    }
    /// A message's raw bytes, as received.
    async fn message_body(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// A message's header as received, up to and with the blank line that ends it
    /// ([`header_end`]): what a FETCH of header sections reads, without a copy of the body
    /// where the backend can leave it.
    async fn message_header(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        let body = self.message_body(account, folder, uid).await?;
        Ok(body.map(|mut raw| {
            raw.truncate(header_end(&raw));
            raw
        }))
    }
    /// The account's changes numbered above `after`, oldest first, at most `limit`: those the
    /// log still holds ([`ChangeWindow`]).
    async fn changes_since(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>>;
    /// [`changes_since`](Self::changes_since) for a reader that must see every change: told
    /// when the log no longer reaches back to `after`.
    async fn changes_after(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<ChangesAfter> {
        let changes = self.changes_since(account, after, limit).await?;
        Ok(ChangesAfter::of(after, changes))
    }
    /// Bytes the account's messages take.
    async fn mailbox_usage(&self, account: &Address) -> StoreResult<u64>;
    /// The account's change counter: the number of the newest change in its log (0 if none).
    /// Raised in the same write as each change, so a reader that takes it before reading the
    /// mailbox sees any later change again, never misses one.
    async fn latest_change(&self, account: &Address) -> StoreResult<u64>;

    /// [`change_flags`](Self::change_flags) unconditionally: the flags after it, or `None` if
    /// there is no such message.
    async fn update_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
    ) -> StoreResult<Option<Vec<String>>> {
        Ok(
            match self
                .change_flags(account, folder, uid, change, None)
                .await?
            {
                FlagUpdate::Applied { flags, .. } => Some(flags),
                FlagUpdate::Modified | FlagUpdate::NoSuchMessage => None,
            },
        )
    }

    /// Every UID of a folder, in order.
    async fn all_uids(&self, account: &Address, folder: &FolderName) -> StoreResult<Vec<u32>> {
        let mut uids = Vec::new();
        let mut pages = MessagePages::new(self, account, folder);
        while let Some(page) = pages.next_states().await? {
            uids.extend(page.iter().map(|m| m.uid));
        }
        Ok(uids)
    }

    /// Copies messages (body, flags and internal date) into another folder, in UID order,
    /// without new-mail notices. All or none: the quota is checked for all of them first, and
    /// if a copy fails part-way those already made are removed again. Stored in writes of up to
    /// [`MAX_MESSAGES_PER_APPEND`] (and [`MOST_BYTES_PER_COPY_WRITE`] of mail), each one durable
    /// commit: one write a message made a COPY of twenty wait for twenty flushes of the disk.
    async fn copy(
        &self,
        account: &Address,
        from: &FolderName,
        uids: &[u32],
        to: &FolderName,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Copied> {
        let Some(target) = self.folder(account, to).await? else {
            return Ok(Copied::NoSuchFolder);
        };
        let mut wanted: Vec<u32> = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut metas = Vec::with_capacity(wanted.len());
        for &uid in wanted.iter().filter(|&&uid| uid > 0) {
            if let Some(meta) = self.messages(account, from, uid - 1, 1).await?.pop()
                && meta.uid == uid
            {
                metas.push(meta);
            }
        }
        let total: u64 = metas.iter().map(|m| m.size).sum();
        let usage = self.mailbox_usage(account).await?;
        if quota_bytes.is_some_and(|quota| usage.saturating_add(total) > quota) {
            return Ok(Copied::OverQuota);
        }
        let mut copied: Vec<(u32, u32)> = Vec::with_capacity(metas.len());
        let mut failure = None;
        let mut metas = metas.into_iter().peekable();
        while metas.peek().is_some() {
            let (mut sources, mut messages, mut bytes) = (Vec::new(), Vec::new(), 0u64);
            while let Some(meta) = metas.next_if(|meta| {
                messages.is_empty()
                    || (messages.len() < MAX_MESSAGES_PER_APPEND
                        && bytes.saturating_add(meta.size) <= MOST_BYTES_PER_COPY_WRITE)
            }) {
                let Some(raw) = self.message_body(account, from, meta.uid).await? else {
                    continue; // expunged meanwhile
                };
                bytes = bytes.saturating_add(raw.len() as u64);
                sources.push(meta.uid);
                messages.push(NewMessage {
                    raw,
                    flags: meta.flags,
                    internal_date: meta.internal_date,
                    // The source was read from this account's own mailbox, which a deletion
                    // purges: a copy of nothing.
                    owner_known_at: None,
                });
            }
            if messages.is_empty() {
                continue;
            }
            match self.append_all(account, to, &messages, quota_bytes).await {
                Ok(Delivery::Stored { uid, .. }) => {
                    copied.extend(sources.into_iter().zip(uid..));
                }
                Ok(refused) => {
                    failure = Some(Ok(refused));
                    break;
                }
                Err(error) => {
                    failure = Some(Err(error));
                    break;
                }
            }
        }
        if let Some(failure) = failure {
            let made: Vec<u32> = copied.iter().map(|(_, new)| *new).collect();
            self.expunge(account, to, &made, false).await?;
            return match failure? {
                Delivery::OverQuota => Ok(Copied::OverQuota),
                _ => Ok(Copied::NoSuchFolder),
            };
        }
        Ok(Copied::Copied {
            uid_validity: target.uid_validity,
            uids: copied,
        })
    }

    /// Deletes a folder and its messages (IMAP DELETE). Its messages go first, then the empty
    /// folder; a message delivered meanwhile is removed on the next round.
    async fn delete_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        for _ in 0..10 {
            if self.folder(account, name).await?.is_none() {
                return Ok(FolderChange::NoSuchFolder);
            }
            let mut pages = MessagePages::new(self, account, name);
            while let Some(page) = pages.next().await? {
                let uids: Vec<u32> = page.iter().map(|m| m.uid).collect();
                self.expunge(account, name, &uids, false).await?;
            }
            match self.remove_empty_folder(account, name).await? {
                FolderChange::NotEmpty => continue,
                done => return Ok(done),
            }
        }
        Ok(FolderChange::NotEmpty)
    }

    /// Renames a folder (IMAP RENAME): a new folder under the new name (so with a new
    /// UIDVALIDITY, RFC 3501 §2.3.1.1) takes a copy of every message, then the old one is
    /// deleted. A crash part-way leaves both, with every message in the old one: nothing is
    /// lost. INBOX is special (RFC 3501 §6.3.5): its messages move and INBOX stays, empty.
    async fn rename_folder(
        &self,
        account: &Address,
        from: &FolderName,
        to: &FolderName,
        at: DateTime<Utc>,
    ) -> StoreResult<FolderChange> {
        if to.as_str().starts_with(&format!("{from}/")) {
            return Ok(FolderChange::IntoItself);
        }
        if self.folder(account, from).await?.is_none() {
            return Ok(FolderChange::NoSuchFolder);
        }
        if self.folder(account, to).await?.is_some() {
            return Ok(FolderChange::Exists);
        }
        self.create_folder(account, to, at).await?;
        let uids = self.all_uids(account, from).await?;
        for chunk in uids.chunks(PAGE) {
            if let Copied::OverQuota | Copied::NoSuchFolder =
                self.copy(account, from, chunk, to, None).await?
            {
                return Ok(FolderChange::NoSuchFolder);
            }
        }
        if from.is_inbox() {
            self.expunge(account, from, &uids, false).await?;
            return Ok(FolderChange::Done);
        }
        let changed = self.delete_folder(account, from).await?;
        // Its subfolders move with it (RFC 3501 §6.3.5).
        let prefix = format!("{from}/");
        for folder in self.folders(account).await? {
            if let Some(rest) = folder.name.as_str().strip_prefix(&prefix)
                && let Ok(new_name) = FolderName::parse(&format!("{to}/{rest}"))
            {
                Box::pin(self.rename_folder(account, &folder.name, &new_name, at)).await?;
            }
        }
        Ok(changed)
    }
}
