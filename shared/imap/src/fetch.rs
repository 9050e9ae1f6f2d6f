//! FETCH and UID FETCH: UID, FLAGS, RFC822.SIZE, INTERNALDATE, and the whole message
//! (BODY[], BODY.PEEK[], RFC822) — what a push service or a syncing client reads. Other items
//! (ENVELOPE, BODYSTRUCTURE, sections) come with the rest of the IMAP issue.

use std::num::NonZeroU32;

use chrono::Timelike;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{IString, Literal, NString, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::select::Selected;
use crate::session::{Imap, Result, Session};
use crate::wire::Wire;

/// The items one FETCH asks for, as pushmail answers them.
#[derive(Debug, Default, Clone, Copy)]
struct Wanted {
    uid: bool,
    flags: bool,
    size: bool,
    internal_date: bool,
    /// The whole message, as `BODY[]` or as `RFC822`.
    body: Option<BodyForm>,
    /// `BODY.PEEK[]`: the message is not marked read.
    peek: bool,
}

#[derive(Debug, Clone, Copy)]
enum BodyForm {
    Body,
    Rfc822,
}

fn wanted(names: &MacroOrMessageDataItemNames<'_>, uid: bool) -> Wanted {
    let mut wanted = Wanted {
        uid,
        ..Wanted::default()
    };
    let names: Vec<MessageDataItemName<'_>> = match names {
        MacroOrMessageDataItemNames::Macro(_) => vec![
            MessageDataItemName::Flags,
            MessageDataItemName::InternalDate,
            MessageDataItemName::Rfc822Size,
        ],
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
    };
    for name in names {
        match name {
            MessageDataItemName::Uid => wanted.uid = true,
            MessageDataItemName::Flags => wanted.flags = true,
            MessageDataItemName::Rfc822Size => wanted.size = true,
            MessageDataItemName::InternalDate => wanted.internal_date = true,
            MessageDataItemName::BodyExt {
                section: None,
                peek,
                ..
            } => {
                wanted.body = Some(BodyForm::Body);
                wanted.peek = peek;
            }
            MessageDataItemName::Rfc822 => wanted.body = Some(BodyForm::Rfc822),
            _ => {}
        }
    }
    wanted
}

fn flag(name: &str) -> Option<FlagFetch<'static>> {
    Flag::try_from(name)
        .ok()
        .map(|flag| FlagFetch::Flag(flag.into_static()))
}

/// (sequence number, UID) of each message of the selected folder a set names, in order.
pub(crate) fn targets(selected: &Selected, set: &SequenceSet, by_uid: bool) -> Vec<(u32, u32)> {
    if by_uid {
        let Some(largest) = selected.uids.last().and_then(|&u| NonZeroU32::new(u)) else {
            return Vec::new();
        };
        let asked: std::collections::BTreeSet<u32> =
            set.iter(largest).map(NonZeroU32::get).collect();
        selected
            .uids
            .iter()
            .enumerate()
            .filter(|(_, uid)| asked.contains(uid))
            .map(|(i, &uid)| (i as u32 + 1, uid))
            .collect()
    } else {
        let Some(largest) = NonZeroU32::new(selected.uids.len() as u32) else {
            return Vec::new();
        };
        set.iter(largest)
            .filter_map(|seq| {
                let uid = *selected.uids.get(seq.get() as usize - 1)?;
                Some((seq.get(), uid))
            })
            .collect()
    }
}

pub(crate) fn flag_items(flags: &[String]) -> MessageDataItem<'static> {
    MessageDataItem::Flags(flags.iter().filter_map(|f| flag(f)).collect())
}

impl Imap {
    pub(crate) async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        by_uid: bool,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return Ok(());
        };
        let wanted = wanted(&names, by_uid);
        let targets = targets(selected, set, by_uid);
        let folder = selected.folder.clone();
        let selected_read_only = selected.read_only;
        let first = targets.first().map(|(_, uid)| uid - 1).unwrap_or(0);
        let metas = self
            .store
            .messages(account, &folder, first, targets.len().max(1) + 1000)
            .await
            .map_err(std::io::Error::other)?;
        for (seq, uid) in targets {
            let Some(meta) = metas.iter().find(|m| m.uid == uid) else {
                continue;
            };
            let mut items = Vec::new();
            if wanted.uid
                && let Some(uid) = NonZeroU32::new(uid)
            {
                items.push(MessageDataItem::Uid(uid));
            }
            let mut flags = meta.flags.clone();
            // BODY[] and RFC822 (not BODY.PEEK[]) mark the message read, in a read-write view.
            if wanted.body.is_some()
                && !wanted.peek
                && !selected_read_only
                && !flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
            {
                let seen = FlagChange::Add(vec!["\\Seen".to_owned()]);
                if let Some(after) = self
                    .store
                    .update_flags(account, &folder, uid, &seen)
                    .await
                    .map_err(std::io::Error::other)?
                {
                    if let Some(selected) = &mut session.selected {
                        selected.own_flags.insert(uid, after.clone());
                    }
                    flags = after;
                }
            }
            if wanted.flags || (wanted.body.is_some() && !wanted.peek && !selected_read_only) {
                items.push(flag_items(&flags));
            }
            if wanted.size {
                items.push(MessageDataItem::Rfc822Size(meta.size as u32));
            }
            if wanted.internal_date {
                // IMAP dates have whole seconds (found by fuzzing: the stored date has ms).
                let whole = meta
                    .internal_date
                    .with_nanosecond(0)
                    .unwrap_or(meta.internal_date);
                if let Ok(date) = DateTime::try_from(whole.fixed_offset()) {
                    items.push(MessageDataItem::InternalDate(date));
                }
            }
            if let Some(form) = wanted.body {
                let raw = self
                    .store
                    .message_body(account, &folder, uid)
                    .await
                    .map_err(std::io::Error::other)?
                    .unwrap_or_default();
                let data = Literal::try_from(raw)
                    .map(|literal| NString(Some(IString::from(literal))))
                    .unwrap_or(NString(None));
                items.push(match form {
                    BodyForm::Body => MessageDataItem::BodyExt {
                        section: None,
                        origin: None,
                        data,
                    },
                    BodyForm::Rfc822 => MessageDataItem::Rfc822(data),
                });
            }
            let (Some(seq), Ok(items)) = (NonZeroU32::new(seq), Vec1::try_from(items)) else {
                continue;
            };
            wire.send(&Response::Data(Data::Fetch { seq, items }))
                .await?;
        }
        Ok(())
    }
}
