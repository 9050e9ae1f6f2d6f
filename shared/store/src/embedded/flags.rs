//! Messages' flags changed (IMAP STORE, a FETCH marking them read), with the folder's
//! HIGHESTMODSEQ and the change log: the messages of one call in one write transaction.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, Folder, MessageState};

use super::mailbox::*;
use super::message_record::{MessageRecord, restated};
use super::*;
use crate::mailbox::{Change, ChangeKind, FlagUpdate};

impl EmbeddedStore {
    pub(super) async fn write_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<Vec<FlagUpdate>> {
        let (account, name, change, uids) = (
            account.clone(),
            folder.clone(),
            change.clone(),
            uids.to_vec(),
        );
        let window = self.change_window;
        // Answered at its commit, on disk within 50 ms (`writer::Answered::Committed`).
        self.write_committed(move |txn| {
            let mut messages = txn.open_table(MESSAGES)?;
            let mut folders = txn.open_table(FOLDERS)?;
            let mut changes = txn.open_table(CHANGES)?;
            let folder_key = folder_key(&account, &name);
            // Read when the first message changes, written once after the last.
            let mut counters: Option<(Folder, AccountState)> = None;
            let mut updates = Vec::with_capacity(uids.len());
            for &uid in &uids {
                let message_key = message_key(&account, &name, uid);
                let record = messages.get(message_key.as_str())?;
                let Some(record) = record.map(|record| record.value().to_owned()) else {
                    updates.push(FlagUpdate::NoSuchMessage);
                    continue;
                };
                let mut meta = MessageState::from_record(&record)?;
                if unchanged_since.is_some_and(|since| meta.modseq > since) {
                    updates.push(FlagUpdate::Modified);
                    continue;
                }
                let flags = change.apply(&meta.flags);
                if flags == meta.flags {
                    updates.push(FlagUpdate::Applied {
                        flags,
                        modseq: meta.modseq,
                    });
                    continue;
                }
                if counters.is_none() {
                    let Some(folder) = get::<Folder>(&folders, &folder_key)? else {
                        updates.push(FlagUpdate::NoSuchMessage);
                        continue;
                    };
                    let state = get(&txn.open_table(ACCOUNT_STATE)?, account.as_str())?;
                    counters = Some((folder, state.unwrap_or_default()));
                }
                let Some((folder, state)) = counters.as_mut() else {
                    continue;
                };
                // Each message its own MODSEQ, as if changed one by one.
                folder.highest_modseq += 1;
                state.changes += 1;
                meta.flags = flags.clone();
                meta.modseq = folder.highest_modseq;
                messages.insert(message_key.as_str(), restated(&record, &meta)?.as_str())?;
                let entry = Change {
                    counter: state.changes,
                    folder: name.clone(),
                    uid,
                    kind: ChangeKind::Flags,
                };
                log_change(&mut changes, &account, &entry, window)?;
                updates.push(FlagUpdate::Applied {
                    flags,
                    modseq: meta.modseq,
                });
            }
            if let Some((folder, state)) = counters {
                folders.insert(folder_key.as_str(), encode(&folder)?.as_str())?;
                txn.open_table(ACCOUNT_STATE)?
                    .insert(account.as_str(), encode(&state)?.as_str())?;
            }
            Ok(updates)
        })
        .await
    }
}
