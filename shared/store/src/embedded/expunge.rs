//! Removing messages and folders, a folder's subscription, and the `\Recent` mark: each one
//! write transaction.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Flagged, Folder, MAX_KEPT_SUBSCRIPTIONS, MessageState};

use super::mailbox::*;
use super::message_record::{Deleted, Marked, MessageRecord};
use super::*;
use crate::mailbox::{Change, ChangeKind, FolderChange};

impl EmbeddedStore {
    pub(super) async fn remove_messages(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>> {
        let (account, name) = (account.clone(), folder.clone());
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        if only_deleted {
            // The writer checks again, but only these: a walk of the whole folder there would
            // hold up every session's writes.
            uids = self.deleted_among(&account, &name, uids).await?;
        }
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let window = self.change_window;
        // Answered at its commit, on disk within 50 ms (`writer::Answered::Committed`): a
        // message brought back by a power loss is expunged again.
        self.write_committed(move |txn| {
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
            for &uid in &uids {
                let message_key = message_key(&account, &name, uid);
                // Its state only: whether it is \\Deleted and its size, not its envelope.
                let Some(meta) = messages
                    .get(message_key.as_str())?
                    .map(|record| MessageState::from_record(record.value()))
                    .transpose()?
                else {
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
                log_change(&mut changes, &account, &entry, window)?;
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

    /// Of `uids` (sorted), those `\Deleted` as of the last commit, read a page at a time on
    /// the caller's thread, from the first of them to the last: each message's UID and
    /// `\Deleted` alone, not its state.
    async fn deleted_among(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: Vec<u32>,
    ) -> StoreResult<Vec<u32>> {
        let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
            return Ok(uids);
        };
        let mut after = first.saturating_sub(1);
        let mut deleted = Vec::new();
        loop {
            let page = self
                .folder_page::<Marked<Deleted>>(account, folder, after, 1_000)
                .await?;
            deleted.extend(
                page.iter()
                    .filter(|mark| mark.0.set && uids.binary_search(&mark.0.uid).is_ok())
                    .map(|mark| mark.0.uid),
            );
            match page.last() {
                Some(mark) if mark.0.uid < last => after = mark.0.uid,
                _ => return Ok(deleted),
            }
        }
    }

    pub(super) async fn remove_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        let k = folder_key(account, name);
        let account = account.clone();
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let Some(folder) = get::<Folder>(&folders, &k)? else {
                return Ok(FolderChange::NoSuchFolder);
            };
            if folder.messages > 0 {
                return Ok(FolderChange::NotEmpty);
            }
            folders.remove(k.as_str())?;
            let mut kept = txn.open_table(SUBSCRIPTIONS)?;
            let prefix = key(&[account.as_str(), ""]);
            if folder.subscribed
                && scan(&kept, &prefix, None, false)?.len() < MAX_KEPT_SUBSCRIPTIONS
            {
                kept.insert(k.as_str(), "")?;
            } else {
                kept.remove(k.as_str())?;
            }
            Ok(FolderChange::Done)
        })
        .await
    }

    pub(super) async fn subscribe(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool> {
        let k = folder_key(account, name);
        self.write(move |txn| {
            let mut folders = txn.open_table(FOLDERS)?;
            let Some(mut folder) = get::<Folder>(&folders, &k)? else {
                // No folder: only a kept subscription can be let go.
                let kept =
                    !subscribed && txn.open_table(SUBSCRIPTIONS)?.remove(k.as_str())?.is_some();
                return Ok(kept);
            };
            folder.subscribed = subscribed;
            folders.insert(k.as_str(), encode(&folder)?.as_str())?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn claim_recent_up_to(
        &self,
        account: &Address,
        name: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>> {
        let k = folder_key(account, name);
        self.write_committed(move |txn| {
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
}
