//! STORE and UID STORE: flags added, removed or replaced, each message in one atomic store write
//! (`MailboxStore::update_flags`), answered with the flags after unless `.SILENT`.

use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use std::num::NonZeroU32;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::fetch::{flag_items, targets};
use crate::session::{Imap, Result, Session};
use crate::wire::Wire;

pub(crate) enum Stored {
    Done,
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
    ) -> Result<Stored> {
        let Some(selected) = &session.selected else {
            return Ok(Stored::Refused("Select a folder first"));
        };
        if selected.read_only {
            return Ok(Stored::Refused("The folder is read-only (EXAMINE)"));
        }
        let names: Vec<String> = flags.iter().map(ToString::to_string).collect();
        let change = match kind {
            StoreType::Add => FlagChange::Add(names),
            StoreType::Remove => FlagChange::Remove(names),
            StoreType::Replace => FlagChange::Replace(names),
        };
        let folder = selected.folder.clone();
        for (seq, uid) in targets(selected, set, by_uid) {
            let after = self
                .store
                .update_flags(account, &folder, uid, &change)
                .await
                .map_err(std::io::Error::other)?;
            let Some(after) = after else { continue };
            if let Some(selected) = &mut session.selected {
                selected.own_flags.insert(uid, after.clone());
            }
            if response != StoreResponse::Answer {
                continue;
            }
            let mut items = vec![flag_items(&after)];
            if by_uid && let Some(uid) = NonZeroU32::new(uid) {
                items.push(MessageDataItem::Uid(uid));
            }
            if let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) {
                wire.send(&Response::Data(Data::Fetch { seq, items }))
                    .await?;
            }
        }
        Ok(Stored::Done)
    }
}
