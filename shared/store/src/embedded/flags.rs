//! A message's flags changed (IMAP STORE, a FETCH marking it read), with the folder's
//! HIGHESTMODSEQ and the change log, in one write transaction.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, Folder, MessageMeta};

use super::mailbox::*;
use super::*;
use crate::mailbox::{Change, ChangeKind, FlagUpdate};

impl EmbeddedStore {
    pub(super) async fn write_flags(
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
}
