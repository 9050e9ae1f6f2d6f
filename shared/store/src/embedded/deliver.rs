//! Storing a message (a delivery with its new-mail notice, or an APPEND): UID, counters, usage,
//! change log and notice in one write transaction.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Envelope, Folder, MessageMeta, NewMessage};
use pushmail_core::notice::Notice;

use super::mailbox::*;
use super::*;
use crate::mailbox::{Change, ChangeKind, Delivery};

impl EmbeddedStore {
    pub(super) async fn account_state(&self, account: &Address) -> StoreResult<AccountState> {
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
    pub(super) async fn store_message(
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
