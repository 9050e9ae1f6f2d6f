//! Mailboxes: folders, messages, bodies and the change log, each delivery one write
//! transaction (durable on commit). The tables and keys are here with the reads; storing is in
//! `deliver.rs`, removing in `expunge.rs`, flag changes in `flags.rs`.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{
    DEFAULT_FOLDERS, FlagChange, FlagMark, Folder, MessageMeta, MessageState, NewMessage,
    SpecialUse,
};
use redb::TableDefinition;

use super::deliver::Arrival;
use super::message_record::{Marked, MessageRecord, Seen, Unflagged};
use super::*;
use crate::mailbox::{Change, Delivery, FlagUpdate, FolderChange};

/// `<account> SEP <folder>` → folder.
pub(super) const FOLDERS: Records = TableDefinition::new("mail_folders");
/// `<account> SEP <folder> SEP <uid, 10 digits>` → message metadata (`message_record.rs`).
pub(super) const MESSAGES: Records = TableDefinition::new("mail_messages");
/// The same keys → raw message bytes.
pub(super) const BODIES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("mail_bodies");
/// `<account>` → the account's usage and change counter.
pub(super) const ACCOUNT_STATE: Records = TableDefinition::new("mail_account_state");
/// `<account> SEP <counter, 20 digits>` → change.
pub(super) const CHANGES: Records = TableDefinition::new("mail_changes");
/// `<account> SEP <folder>` → "": a subscription kept when its folder was deleted.
pub(super) const SUBSCRIPTIONS: Records = TableDefinition::new("mail_subscriptions");
/// `<account>` → the highest UIDVALIDITY its address ever gave a folder. Kept when the account
/// is deleted: a number, nobody's data, and what keeps a new owner's folders from reusing one.
pub(super) const UID_VALIDITY_FLOORS: Records = TableDefinition::new("mail_uid_validity_floors");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    for table in [
        FOLDERS,
        MESSAGES,
        SUBSCRIPTIONS,
        ACCOUNT_STATE,
        CHANGES,
        UID_VALIDITY_FLOORS,
    ] {
        txn.open_table(table)?;
    }
    txn.open_table(BODIES)?;
    Ok(())
}

#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub(super) struct AccountState {
    pub(super) usage: u64,
    pub(super) changes: u64,
}

/// Up to `limit` values of the keys after `after` that start with `prefix`, in key order,
/// decoded (by `decode`) as they are read (no copy of each first), from `after` on (not from
/// the prefix's start: a long folder is not read whole).
pub(super) fn decoded_after<T>(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: &str,
    limit: usize,
    decode: impl Fn(&str) -> TxResult<T>,
) -> TxResult<Vec<T>> {
    use std::ops::Bound::Excluded;
    let end = format!("{prefix}{}", char::MAX);
    let mut values = Vec::new();
    for entry in table
        .range::<&str>((Excluded(after), Excluded(end.as_str())))?
        .take(limit)
    {
        values.push(decode(entry?.1.value())?);
    }
    Ok(values)
}

/// Removes up to `budget` keys of `table` that start with `prefix`, and takes what it removed
/// off the budget: a purge removes a bounded number of rows a transaction.
pub(super) fn remove_prefixed<V: redb::Value + 'static>(
    table: &mut redb::Table<'_, &'static str, V>,
    prefix: &str,
    budget: &mut usize,
) -> TxResult<()> {
    let end = format!("{prefix}{}", char::MAX);
    let keys = table
        .range::<&str>(prefix..end.as_str())?
        .take(*budget)
        .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    *budget -= keys.len();
    for k in keys {
        table.remove(k.as_str())?;
    }
    Ok(())
}

/// Up to `budget` rows of what an account's mailbox holds (bodies, messages, the change log,
/// folders, kept subscriptions), in the caller's transaction, taken off the budget; its state
/// once the rest is gone (budget left over).
pub(super) fn purge_mailbox(
    txn: &WriteTransaction,
    account: &Address,
    budget: &mut usize,
) -> TxResult<()> {
    let prefix = key(&[account.as_str(), ""]);
    remove_prefixed(&mut txn.open_table(BODIES)?, &prefix, budget)?;
    for table in [MESSAGES, CHANGES, FOLDERS, SUBSCRIPTIONS] {
        remove_prefixed(&mut txn.open_table(table)?, &prefix, budget)?;
    }
    if *budget > 0 {
        txn.open_table(ACCOUNT_STATE)?.remove(account.as_str())?;
    }
    Ok(())
}

/// Creates a folder unless it exists, with a UIDVALIDITY above every one the address gave
/// before (its floor, raised here in the same transaction).
pub(super) fn create_folder_in(
    txn: &WriteTransaction,
    account: &Address,
    name: FolderName,
    special_use: Option<SpecialUse>,
    at: DateTime<Utc>,
) -> TxResult<()> {
    let mut folders = txn.open_table(FOLDERS)?;
    let k = folder_key(account, &name);
    if folders.get(k.as_str())?.is_some() {
        return Ok(());
    }
    let mut floors = txn.open_table(UID_VALIDITY_FLOORS)?;
    let floor: u32 = get(&floors, account.as_str())?.unwrap_or(0);
    let folder = Folder::new(account.clone(), name, special_use, at, floor);
    folders.insert(k.as_str(), encode(&folder)?.as_str())?;
    floors.insert(account.as_str(), encode(&folder.uid_validity)?.as_str())?;
    Ok(())
}

pub(super) fn folder_key(account: &Address, folder: &FolderName) -> String {
    key(&[account.as_str(), folder.as_str()])
}

pub(super) fn message_key(account: &Address, folder: &FolderName, uid: u32) -> String {
    key(&[account.as_str(), folder.as_str(), &format!("{uid:010}")])
}

pub(super) fn change_key(account: &Address, counter: u64) -> String {
    key(&[account.as_str(), &format!("{counter:020}")])
}

/// Adds `change` to the account's change log (its counter already taken from the account's
/// state, in the same transaction), and drops the changes older than `window` when its turn
/// comes ([`ChangeWindow::drop_through`]).
pub(super) fn log_change(
    changes: &mut redb::Table<'_, &'static str, &'static str>,
    account: &Address,
    change: &Change,
    window: ChangeWindow,
) -> TxResult<()> {
    let k = change_key(account, change.counter);
    changes.insert(k.as_str(), encode(change)?.as_str())?;
    super::latest_changes::logged(account, change.counter);
    if let Some(through) = window.drop_through(change.counter, change.counter) {
        let (first, last) = (change_key(account, 0), change_key(account, through));
        changes.retain_in::<&str, _>(first.as_str()..=last.as_str(), |_, _| false)?;
    }
    Ok(())
}

#[async_trait]
impl crate::MailboxStore for EmbeddedStore {
    async fn create_default_folders(
        &self,
        account: &Address,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let account = account.clone();
        self.write(move |txn| {
            for (name, special_use) in DEFAULT_FOLDERS {
                let name = FolderName::parse(name)
                    .map_err(|e| StoreError::Corrupt(format!("default folder: {}", e.0)))?;
                create_folder_in(txn, &account, name, special_use, at)?;
            }
            Ok(())
        })
        .await
    }

    async fn create_folder(
        &self,
        account: &Address,
        name: &FolderName,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (account, name) = (account.clone(), name.clone());
        self.write(move |txn| create_folder_in(txn, &account, name.clone(), None, at))
            .await
    }

    async fn folders(&self, account: &Address) -> StoreResult<Vec<Folder>> {
        let prefix = key(&[account.as_str(), ""]);
        self.read(move |txn| {
            scan(&txn.open_table(FOLDERS)?, &prefix, None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn folder(&self, account: &Address, name: &FolderName) -> StoreResult<Option<Folder>> {
        let k = folder_key(account, name);
        self.read(move |txn| get(&txn.open_table(FOLDERS)?, &k))
            .await
    }

    async fn deliver(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        let arrival = Arrival::Delivered;
        self.store_messages(
            account,
            folder,
            std::slice::from_ref(message),
            quota_bytes,
            arrival,
        )
        .await
        .map(|(delivery, _)| delivery)
    }

    async fn append_all(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        self.store_messages(account, folder, messages, quota_bytes, Arrival::Appended)
            .await
            .map(|(delivery, _)| delivery)
    }

    async fn append_all_claiming_recent(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
    ) -> StoreResult<(Delivery, std::ops::RangeInclusive<u32>)> {
        let arrival = Arrival::AppendedClaimingRecent;
        self.store_messages(account, folder, messages, quota_bytes, arrival)
            .await
    }

    async fn expunge(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>> {
        self.remove_messages(account, folder, uids, only_deleted)
            .await
    }

    async fn remove_empty_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        self.remove_folder(account, name).await
    }

    async fn subscriptions_without_folder(
        &self,
        account: &Address,
    ) -> StoreResult<Vec<FolderName>> {
        let prefix = key(&[account.as_str(), ""]);
        self.read(move |txn| {
            let folders = txn.open_table(FOLDERS)?;
            let mut names = Vec::new();
            for (key, _) in scan(&txn.open_table(SUBSCRIPTIONS)?, &prefix, None, false)? {
                if folders.get(key.as_str())?.is_some() {
                    continue;
                }
                let name = key.strip_prefix(&prefix).unwrap_or_default();
                if let Ok(name) = FolderName::parse(name) {
                    names.push(name);
                }
            }
            Ok(names)
        })
        .await
    }

    async fn set_subscribed(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool> {
        self.subscribe(account, name, subscribed).await
    }

    async fn claim_recent(
        &self,
        account: &Address,
        name: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>> {
        self.claim_recent_up_to(account, name, up_to).await
    }

    async fn change_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagUpdate> {
        let mut updates = self
            .write_flags(account, folder, &[uid], change, unchanged_since)
            .await?;
        Ok(updates.pop().unwrap_or(FlagUpdate::NoSuchMessage))
    }

    async fn change_flags_of(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<FlagUpdate>> {
        self.write_flags(account, folder, uids, change, unchanged_since)
            .await
    }

    async fn messages(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageMeta>> {
        self.folder_page(account, folder, after_uid, limit).await
    }

    async fn message_states(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageState>> {
        self.folder_page(account, folder, after_uid, limit).await
    }

    async fn message_states_without_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageState>> {
        let states = self.folder_page::<Unflagged>(account, folder, after_uid, limit);
        Ok(states.await?.into_iter().map(|state| state.0).collect())
    }

    async fn seen_marks(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<FlagMark>> {
        let marks = self.folder_page::<Marked<Seen>>(account, folder, after_uid, limit);
        Ok(marks.await?.into_iter().map(|mark| mark.0).collect())
    }

    async fn message_body(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        self.stored_bytes(account, folder, uid, |raw| raw).await
    }

    async fn message_header(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        self.stored_bytes(account, folder, uid, pushmail_core::message::header_of)
            .await
    }

    async fn changes_since(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        if self.latest_changes.nothing_after(account, after) {
            return Ok(Vec::new());
        }
        let prefix = key(&[account.as_str(), ""]);
        let after = change_key(account, after);
        self.read(move |txn| {
            let changes = txn.open_table(CHANGES)?;
            decoded_after(&changes, &prefix, &after, limit, decode)
        })
        .await
    }

    async fn mailbox_usage(&self, account: &Address) -> StoreResult<u64> {
        Ok(self.account_state(account).await?.usage)
    }

    async fn latest_change(&self, account: &Address) -> StoreResult<u64> {
        Ok(self.account_state(account).await?.changes)
    }
}

impl EmbeddedStore {
    /// What `keep` takes of a message's stored bytes, copied out of the read (only that part).
    async fn stored_bytes(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        keep: fn(&[u8]) -> &[u8],
    ) -> StoreResult<Option<Vec<u8>>> {
        let k = message_key(account, folder, uid);
        self.read(move |txn| {
            let body = txn.open_table(BODIES)?.get(k.as_str())?;
            Ok(body.map(|body| keep(body.value()).to_vec()))
        })
        .await
    }

    /// Up to `limit` of a folder's message records after `after_uid`, decoded as `T` (the whole
    /// metadata, or its state alone: `message_record.rs`).
    pub(super) async fn folder_page<T: MessageRecord + Send + 'static>(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<T>> {
        let prefix = key(&[account.as_str(), folder.as_str(), ""]);
        let after = message_key(account, folder, after_uid);
        self.read(move |txn| {
            let messages = txn.open_table(MESSAGES)?;
            decoded_after(&messages, &prefix, &after, limit, T::from_record)
        })
        .await
    }
}
