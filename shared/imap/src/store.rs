//! STORE and UID STORE: flags added, removed or replaced, the messages of each chunk in one
//! atomic store write (`MailboxStore::change_flags_of`), answered with the flags after unless
//! `.SILENT`; CONDSTORE's UNCHANGEDSINCE checked in that same write.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::mailbox::{FlagChange, MAX_FLAGS_PER_MESSAGE};
use pushmail_core::types::Address;
use pushmail_store::{FLAG_CHANGES_PER_CALL, FlagUpdate};
use std::num::{NonZeroU32, NonZeroU64};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::fetch::targets;
use crate::fetch_response::flag_items;
use crate::reply::{Result, io};
use crate::state::{Imap, Session};
use crate::wire::Wire;

pub(crate) enum Stored {
    /// Done; with UNCHANGEDSINCE, the messages (by UID for UID STORE, else by number) left
    /// alone because they changed after it (RFC 7162 §3.1.3: `OK [MODIFIED …]`).
    Done {
        modified: Vec<u32>,
    },
    Refused(&'static str),
}

impl Imap {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_flags<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'static>],
        by_uid: bool,
        unchanged_since: Option<u64>,
    ) -> Result<Stored> {
        let Some(selected) = &session.selected else {
            return Ok(Stored::Refused("Select a folder first"));
        };
        if selected.read_only {
            return Ok(Stored::Refused("The folder is read-only (EXAMINE)"));
        }
        // \Recent is the server's, never stored (RFC 3501 §2.3.2): a client's is ignored.
        let names: Vec<String> = flags
            .iter()
            .map(ToString::to_string)
            .filter(|name| !name.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let change = match kind {
            StoreType::Add => FlagChange::Add(names),
            StoreType::Remove => FlagChange::Remove(names),
            StoreType::Replace => FlagChange::Replace(names),
        };
        if change.named().len() > MAX_FLAGS_PER_MESSAGE {
            return Ok(Stored::Refused("[LIMIT] Too many flags for one message"));
        }
        let folder = selected.folder.clone();
        let targets = targets(selected, set, by_uid);
        let mut modified = Vec::new();
        // A write per chunk of messages, not per message: each waits for a durable commit.
        for chunk in targets.chunks(FLAG_CHANGES_PER_CALL) {
            let uids: Vec<u32> = chunk.iter().map(|&(_, uid)| uid).collect();
            let updates = self
                .store
                .change_flags_of(account, &folder, &uids, &change, unchanged_since)
                .await
                .map_err(io)?;
            for (&(seq, uid), update) in chunk.iter().zip(updates) {
                self.tell_stored(
                    wire,
                    session,
                    (seq, uid),
                    update,
                    response,
                    by_uid,
                    &mut modified,
                )
                .await?;
            }
        }
        Ok(Stored::Done { modified })
    }

    /// One message's outcome of a STORE, told as the command asked.
    #[allow(clippy::too_many_arguments)]
    async fn tell_stored<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        (seq, uid): (u32, u32),
        update: FlagUpdate,
        response: StoreResponse,
        by_uid: bool,
        modified: &mut Vec<u32>,
    ) -> Result<()> {
        let (after, modseq) = match update {
            FlagUpdate::Applied { flags, modseq } => (flags, modseq),
            FlagUpdate::Modified => {
                modified.push(if by_uid { uid } else { seq });
                return Ok(());
            }
            FlagUpdate::NoSuchMessage => return Ok(()),
        };
        if let Some(selected) = &mut session.selected {
            selected.own_flags.insert(uid, after.clone());
            // A new keyword is told (FLAGS) even to a .SILENT store (RFC 3501 §7.2.6).
            selected.announce_keywords(wire, &after).await?;
        }
        // With CONDSTORE on, the new MODSEQ is news even to a .SILENT store (§3.1.3).
        if response != StoreResponse::Answer && !session.condstore {
            return Ok(());
        }
        let mut items = Vec::new();
        if response == StoreResponse::Answer {
            let recent = session
                .selected
                .as_ref()
                .is_some_and(|selected| selected.recent.contains(uid));
            items.push(flag_items(&after, recent));
        }
        if by_uid && let Some(uid) = NonZeroU32::new(uid) {
            items.push(MessageDataItem::Uid(uid));
        }
        if session.condstore
            && let Some(modseq) = NonZeroU64::new(modseq)
        {
            items.push(MessageDataItem::ModSeq(modseq));
        }
        if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
            wire.send(&Response::Data(Data::Fetch { seq, items }))
                .await?;
        }
        Ok(())
    }
}
