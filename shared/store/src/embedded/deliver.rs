//! Storing messages (a delivery with its new-mail notice, or an APPEND of one or several): UIDs,
//! counters, usage, change log and notice in one write transaction, so several are stored all
//! or none.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Envelope, Folder, MessageMeta, NewMessage};
use pushmail_core::notice::Notice;

use super::mailbox::*;
use super::message_record::message_record;
use super::*;
use crate::mailbox::{Change, ChangeKind, Delivery, check_batch};

/// How messages came, for what their write does besides storing them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// A delivery: with its new-mail notice.
    Delivered,
    /// An APPEND or COPY: no notice.
    Appended,
    /// An APPEND by a session with the folder selected: no notice, and `\Recent` claimed for it
    /// up to the last new UID, in the same write.
    AppendedClaimingRecent,
}

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

    /// A delivery or an APPEND of `messages` (at least one), all or none; the first one's UID is
    /// answered, the others' follow it, with the UIDs whose `\Recent` it claimed.
    pub(super) async fn store_messages(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
        arrival: Arrival,
    ) -> StoreResult<(Delivery, std::ops::RangeInclusive<u32>)> {
        let nothing = || Folder::recent_claimed(0, 0);
        check_batch(messages)?;
        let (account, name, messages) = (account.clone(), folder.clone(), messages.to_vec());
        let envelopes: Vec<Envelope> = messages.iter().map(|m| Envelope::parse(&m.raw)).collect();
        let bytes = messages.iter().map(|m| m.raw.len()).sum();
        let window = self.change_window;
        self.write_mail(bytes, move |txn| {
            let owner = get::<Account>(&txn.open_table(ACCOUNTS)?, account.as_str())?;
            let Some(owner) = owner.filter(|owner| messages.iter().all(|m| m.is_for(owner))) else {
                return Ok((Delivery::NoSuchAccount, nothing()));
            };
            let mut folders = txn.open_table(FOLDERS)?;
            let folder_key = folder_key(&account, &name);
            let Some(mut folder) = get::<Folder>(&folders, &folder_key)? else {
                return Ok((Delivery::NoSuchFolder, nothing()));
            };
            let mut states = txn.open_table(ACCOUNT_STATE)?;
            let mut state: AccountState = get(&states, account.as_str())?.unwrap_or_default();
            let size: u64 = messages.iter().map(|m| m.raw.len() as u64).sum();
            if quota_bytes.is_some_and(|quota| state.usage.saturating_add(size) > quota) {
                return Ok((Delivery::OverQuota, nothing()));
            }
            let first_uid = folder.uid_next;
            let mut noticed = false;
            for (message, envelope) in messages.iter().zip(&envelopes) {
                let uid = folder.uid_next;
                folder.uid_next = uid
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Backend(format!("{name}: no UIDs left")))?;
                folder.highest_modseq += 1;
                folder.messages += 1;
                state.changes += 1;
                let meta = MessageMeta {
                    uid,
                    flags: message.flags.clone(),
                    internal_date: message.internal_date,
                    size: message.raw.len() as u64,
                    modseq: folder.highest_modseq,
                    envelope: envelope.clone(),
                };
                let message_key = message_key(&account, &name, uid);
                txn.open_table(MESSAGES)?
                    .insert(message_key.as_str(), message_record(&meta)?.as_str())?;
                txn.open_table(BODIES)?
                    .insert(message_key.as_str(), message.raw.as_slice())?;
                let change = Change {
                    counter: state.changes,
                    folder: name.clone(),
                    uid,
                    kind: ChangeKind::Added,
                };
                log_change(&mut txn.open_table(CHANGES)?, &account, &change, window)?;
                let notice = match arrival == Arrival::Delivered {
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
                    noticed = true;
                }
            }
            state.usage += size;
            let claimed = match arrival {
                Arrival::AppendedClaimingRecent => {
                    let (claimed, mark) = folder.claim_recent(folder.uid_next.saturating_sub(1));
                    folder.recent_up_to = mark;
                    claimed
                }
                Arrival::Delivered | Arrival::Appended => nothing(),
            };
            folders.insert(folder_key.as_str(), encode(&folder)?.as_str())?;
            states.insert(account.as_str(), encode(&state)?.as_str())?;
            let delivery = Delivery::Stored {
                uid: first_uid,
                uid_validity: folder.uid_validity,
                modseq: folder.highest_modseq,
                change: state.changes,
                noticed,
            };
            Ok((delivery, claimed))
        })
        .await
    }
}
