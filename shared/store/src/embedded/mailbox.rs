//! Mailboxes: folders, messages, bodies and the change log, each delivery one write
//! transaction (durable on commit).

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{
    DEFAULT_FOLDERS, Envelope, FlagChange, Folder, MessageMeta, NewMessage, SpecialUse,
};
use pushmail_core::notice::Notice;
use redb::TableDefinition;

use super::*;
use crate::mailbox::{Change, ChangeKind, Delivery, FlagUpdate, FolderChange};

/// `<account> SEP <folder>` → folder.
const FOLDERS: Records = TableDefinition::new("mail_folders");
/// `<account> SEP <folder> SEP <uid, 10 digits>` → message metadata.
const MESSAGES: Records = TableDefinition::new("mail_messages");
/// The same keys → raw message bytes.
const BODIES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("mail_bodies");
/// `<account>` → the account's usage and change counter.
const ACCOUNT_STATE: Records = TableDefinition::new("mail_account_state");
/// `<account> SEP <counter, 20 digits>` → change.
const CHANGES: Records = TableDefinition::new("mail_changes");
/// `<account>` → the highest UIDVALIDITY its address ever gave a folder. Kept when the account
/// is deleted: a number, nobody's data, and what keeps a new owner's folders from reusing one.
const UID_VALIDITY_FLOORS: Records = TableDefinition::new("mail_uid_validity_floors");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    for table in [
        FOLDERS,
        MESSAGES,
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
struct AccountState {
    usage: u64,
    changes: u64,
}

/// Up to `limit` values of the keys after `after` that start with `prefix`, in key order, read
/// from `after` on (not from the prefix's start: a long folder is not read whole).
fn values_after(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: &str,
    limit: usize,
) -> TxResult<Vec<String>> {
    use std::ops::Bound::Excluded;
    let end = format!("{prefix}{}", char::MAX);
    let mut values = Vec::new();
    for entry in table
        .range::<&str>((Excluded(after), Excluded(end.as_str())))?
        .take(limit)
    {
        values.push(entry?.1.value().to_owned());
    }
    Ok(values)
}

/// Removes every key of `table` that starts with `prefix`.
pub(super) fn remove_prefixed<V: redb::Value + 'static>(
    table: &mut redb::Table<'_, &'static str, V>,
    prefix: &str,
) -> TxResult<()> {
    let end = format!("{prefix}{}", char::MAX);
    let keys = table
        .range::<&str>(prefix..end.as_str())?
        .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    for k in keys {
        table.remove(k.as_str())?;
    }
    Ok(())
}

/// Everything an account's mailbox holds (folders, messages, bodies, the change log, its
/// state), in the caller's transaction: an account's deletion, or a new account at an address.
pub(super) fn purge_mailbox(txn: &WriteTransaction, account: &Address) -> TxResult<()> {
    let prefix = key(&[account.as_str(), ""]);
    for table in [FOLDERS, MESSAGES, CHANGES] {
        remove_prefixed(&mut txn.open_table(table)?, &prefix)?;
    }
    remove_prefixed(&mut txn.open_table(BODIES)?, &prefix)?;
    txn.open_table(ACCOUNT_STATE)?.remove(account.as_str())?;
    Ok(())
}

/// Creates a folder unless it exists, with a UIDVALIDITY above every one the address gave
/// before (its floor, raised here in the same transaction).
fn create_folder_in(
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

fn folder_key(account: &Address, folder: &FolderName) -> String {
    key(&[account.as_str(), folder.as_str()])
}

fn message_key(account: &Address, folder: &FolderName, uid: u32) -> String {
    key(&[account.as_str(), folder.as_str(), &format!("{uid:010}")])
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
        self.write(move |txn| create_folder_in(txn, &account, name, None, at))
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
        self.store_message(account, folder, message, quota_bytes, true)
            .await
    }

    async fn append(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        self.store_message(account, folder, message, quota_bytes, false)
            .await
    }

    async fn expunge(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>> {
        let (account, name, uids) = (account.clone(), folder.clone(), uids.to_vec());
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let folder_key = folder_key(&account, &name);
            let Some(mut folder) = get::<Folder>(&folders, &folder_key)? else {
                return Ok(Vec::new());
            };
            let mut states = txn.open_table(ACCOUNT_STATE)?;
            let mut state: AccountState = get(&states, account.as_str())?.unwrap_or_default();
            let mut messages = txn.open_table(MESSAGES)?;
            let mut bodies = txn.open_table(BODIES)?;
            let mut changes = txn.open_table(CHANGES)?;
            let mut removed = Vec::new();
            let mut wanted = uids;
            wanted.sort_unstable();
            wanted.dedup();
            for uid in wanted {
                let message_key = message_key(&account, &name, uid);
                let Some(meta) = get::<MessageMeta>(&messages, &message_key)? else {
                    continue;
                };
                if only_deleted && !meta.is_deleted() {
                    continue;
                }
                messages.remove(message_key.as_str())?;
                bodies.remove(message_key.as_str())?;
                folder.messages = folder.messages.saturating_sub(1);
                state.usage = state.usage.saturating_sub(meta.size);
                state.changes += 1;
                let entry = Change {
                    counter: state.changes,
                    folder: name.clone(),
                    uid,
                    kind: ChangeKind::Expunged,
                };
                let change_key = key(&[account.as_str(), &format!("{:020}", state.changes)]);
                changes.insert(change_key.as_str(), encode(&entry)?.as_str())?;
                removed.push(uid);
            }
            if !removed.is_empty() {
                folder.highest_modseq += 1;
                folders.insert(folder_key.as_str(), encode(&folder)?.as_str())?;
                states.insert(account.as_str(), encode(&state)?.as_str())?;
            }
            Ok(removed)
        })
        .await
    }

    async fn remove_empty_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        let k = folder_key(account, name);
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let Some(folder) = get::<Folder>(&folders, &k)? else {
                return Ok(FolderChange::NoSuchFolder);
            };
            if folder.messages > 0 {
                return Ok(FolderChange::NotEmpty);
            }
            folders.remove(k.as_str())?;
            Ok(FolderChange::Done)
        })
        .await
    }

    async fn set_subscribed(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool> {
        let k = folder_key(account, name);
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let Some(mut folder) = get::<Folder>(&folders, &k)? else {
                return Ok(false);
            };
            folder.subscribed = subscribed;
            folders.insert(k.as_str(), encode(&folder)?.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn claim_recent(
        &self,
        account: &Address,
        name: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>> {
        let k = folder_key(account, name);
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let Some(mut folder) = get::<Folder>(&folders, &k)? else {
                return Ok(Folder::recent_claimed(up_to, up_to));
            };
            let (claimed, mark) = folder.claim_recent(up_to);
            if mark != folder.recent_up_to {
                folder.recent_up_to = mark;
                folders.insert(k.as_str(), encode(&folder)?.as_str())?;
            }
            Ok(claimed)
        })
        .await
    }

    async fn change_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagUpdate> {
        let (account, name, change) = (account.clone(), folder.clone(), change.clone());
        self.write(move |txn| {
            let mut messages = txn.open_table(MESSAGES)?;
            let message_key = message_key(&account, &name, uid);
            let Some(mut meta) = get::<MessageMeta>(&messages, &message_key)? else {
                return Ok(FlagUpdate::NoSuchMessage);
            };
            if unchanged_since.is_some_and(|since| meta.modseq > since) {
                return Ok(FlagUpdate::Modified);
            }
            let flags = change.apply(&meta.flags);
            if flags == meta.flags {
                return Ok(FlagUpdate::Applied {
                    flags,
                    modseq: meta.modseq,
                });
            }
            let mut folders = txn.open_table(FOLDERS)?;
            let folder_key = folder_key(&account, &name);
            let Some(mut folder) = get::<Folder>(&folders, &folder_key)? else {
                return Ok(FlagUpdate::NoSuchMessage);
            };
            let mut states = txn.open_table(ACCOUNT_STATE)?;
            let mut state: AccountState = get(&states, account.as_str())?.unwrap_or_default();
            folder.highest_modseq += 1;
            state.changes += 1;
            meta.flags = flags.clone();
            meta.modseq = folder.highest_modseq;
            messages.insert(message_key.as_str(), encode(&meta)?.as_str())?;
            let entry = Change {
                counter: state.changes,
                folder: name.clone(),
                uid,
                kind: ChangeKind::Flags,
            };
            let change_key = key(&[account.as_str(), &format!("{:020}", state.changes)]);
            txn.open_table(CHANGES)?
                .insert(change_key.as_str(), encode(&entry)?.as_str())?;
            folders.insert(folder_key.as_str(), encode(&folder)?.as_str())?;
            states.insert(account.as_str(), encode(&state)?.as_str())?;
            Ok(FlagUpdate::Applied {
                flags,
                modseq: meta.modseq,
            })
        })
        .await
    }

    async fn messages(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageMeta>> {
        let prefix = key(&[account.as_str(), folder.as_str(), ""]);
        let after = message_key(account, folder, after_uid);
        self.read(move |txn| {
            values_after(&txn.open_table(MESSAGES)?, &prefix, &after, limit)?
                .iter()
                .map(|v| decode(v))
                .collect()
        })
        .await
    }

    async fn message_body(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        let k = message_key(account, folder, uid);
        self.read(move |txn| {
            Ok(txn
                .open_table(BODIES)?
                .get(k.as_str())?
                .map(|body| body.value().to_vec()))
        })
        .await
    }

    async fn changes_since(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        let prefix = key(&[account.as_str(), ""]);
        let after = key(&[account.as_str(), &format!("{after:020}")]);
        self.read(move |txn| {
            values_after(&txn.open_table(CHANGES)?, &prefix, &after, limit)?
                .iter()
                .map(|v| decode(v))
                .collect()
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
    async fn account_state(&self, account: &Address) -> StoreResult<AccountState> {
        let account = account.clone();
        self.read(move |txn| {
            Ok(
                get::<AccountState>(&txn.open_table(ACCOUNT_STATE)?, account.as_str())?
                    .unwrap_or_default(),
            )
        })
        .await
    }

    /// A delivery (`announce`: with its new-mail notice) or an APPEND.
    async fn store_message(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
        announce: bool,
    ) -> StoreResult<Delivery> {
        let (account, name, message) = (account.clone(), folder.clone(), message.clone());
        let envelope = Envelope::parse(&message.raw);
        self.write(move |txn| {
            let owner = get::<Account>(&txn.open_table(ACCOUNTS)?, account.as_str())?;
            let Some(owner) = owner.filter(|owner| message.is_for(owner)) else {
                return Ok(Delivery::NoSuchAccount);
            };
            let mut folders = txn.open_table(FOLDERS)?;
            let folder_key = folder_key(&account, &name);
            let Some(mut folder) = get::<Folder>(&folders, &folder_key)? else {
                return Ok(Delivery::NoSuchFolder);
            };
            let mut states = txn.open_table(ACCOUNT_STATE)?;
            let mut state: AccountState = get(&states, account.as_str())?.unwrap_or_default();
            let size = message.raw.len() as u64;
            if quota_bytes.is_some_and(|quota| state.usage.saturating_add(size) > quota) {
                return Ok(Delivery::OverQuota);
            }
            let uid = folder.uid_next;
            folder.uid_next = uid
                .checked_add(1)
                .ok_or_else(|| StoreError::Backend(format!("{name}: no UIDs left")))?;
            folder.highest_modseq += 1;
            folder.messages += 1;
            state.usage += size;
            state.changes += 1;
            let meta = MessageMeta {
                uid,
                flags: message.flags.clone(),
                internal_date: message.internal_date,
                size,
                modseq: folder.highest_modseq,
                envelope,
            };
            let message_key = message_key(&account, &name, uid);
            txn.open_table(MESSAGES)?
                .insert(message_key.as_str(), encode(&meta)?.as_str())?;
            txn.open_table(BODIES)?
                .insert(message_key.as_str(), message.raw.as_slice())?;
            let change = Change {
                counter: state.changes,
                folder: name.clone(),
                uid,
                kind: ChangeKind::Added,
            };
            let change_key = key(&[account.as_str(), &format!("{:020}", state.changes)]);
            txn.open_table(CHANGES)?
                .insert(change_key.as_str(), encode(&change)?.as_str())?;
            folders.insert(folder_key.as_str(), encode(&folder)?.as_str())?;
            states.insert(account.as_str(), encode(&state)?.as_str())?;
            let notice = match announce {
                true => {
                    let link: Option<Link> = get(&txn.open_table(LINKS)?, account.as_str())?;
                    Notice::for_delivery(
                        &owner,
                        link.as_ref(),
                        &name,
                        uid,
                        folder.uid_validity,
                        state.changes,
                        &meta.envelope,
                        message.internal_date,
                    )
                }
                false => None,
            };
            if let Some(notice) = &notice {
                super::notices::record(txn, notice)?;
            }
            Ok(Delivery::Stored {
                uid,
                uid_validity: folder.uid_validity,
                modseq: folder.highest_modseq,
                change: state.changes,
                noticed: notice.is_some(),
            })
        })
        .await
    }
}
