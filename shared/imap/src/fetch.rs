//! FETCH and UID FETCH: UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ from the metadata;
//! ENVELOPE, BODY/BODYSTRUCTURE, RFC822.* and BODY[<section>]<<partial>> from the message
//! (`mime.rs`), read and parsed once per message. Reading the text marks it `\Seen` unless
//! PEEKed or in an EXAMINEd folder.

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use chrono::Timelike;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::{IString, Literal, NString};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, Flagged, MessageState};
use pushmail_core::types::Address;
use pushmail_store::{FLAG_CHANGES_PER_CALL, FlagUpdate};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::binary;
use crate::fetch_response::FetchResponse;
use crate::mime::Parsed;
use crate::reply::{Result, io};
use crate::state::{Imap, Session};
use crate::summaries::Summary;
use crate::uids::Ranges;
use crate::view::Selected;
use crate::wire::Wire;

/// `<start.length>` of a section, if asked.
type Partial = Option<(u32, NonZeroU32)>;

/// The items one FETCH asks for, as pushmail answers them.
#[derive(Debug, Default, Clone)]
struct Wanted {
    uid: bool,
    flags: bool,
    size: bool,
    internal_date: bool,
    modseq: bool,
    envelope: bool,
    /// BODY without a section, and BODYSTRUCTURE: both told when both are asked.
    body: bool,
    structure: bool,
    rfc822: bool,
    rfc822_header: bool,
    rfc822_text: bool,
    /// `BODY[<section>]<<partial>>`, each as asked.
    sections: Vec<(Option<Section<'static>>, Partial)>,
    /// `BINARY[<part>]<<partial>>` and `BINARY.SIZE[<part>]` (RFC 3516).
    binaries: Vec<(Vec<NonZeroU32>, Partial)>,
    binary_sizes: Vec<Vec<NonZeroU32>>,
    /// Some item reads the message text and is not a PEEK: the message is marked read.
    marks_seen: bool,
}

impl Wanted {
    fn needs_body(&self) -> bool {
        self.envelope || self.body || self.structure || self.needs_text()
    }

    /// Every item that reads the message's bytes reads its top-level header alone.
    fn reads_header_only(&self) -> bool {
        !self.rfc822
            && !self.rfc822_text
            && self.binaries.is_empty()
            && self.binary_sizes.is_empty()
            && self.sections.iter().all(|(section, _)| {
                matches!(
                    section,
                    Some(
                        Section::Header(None)
                            | Section::HeaderFields(None, _)
                            | Section::HeaderFieldsNot(None, _)
                    )
                )
            })
    }

    /// Some item is the message's bytes, not only what its structure says.
    fn needs_text(&self) -> bool {
        self.rfc822
            || self.rfc822_header
            || self.rfc822_text
            || !self.sections.is_empty()
            || !self.binaries.is_empty()
            || !self.binary_sizes.is_empty()
    }
}

fn wanted(names: &MacroOrMessageDataItemNames<'static>, uid: bool) -> Wanted {
    let mut wanted = Wanted {
        uid,
        ..Wanted::default()
    };
    let names: Vec<MessageDataItemName<'static>> = match names {
        MacroOrMessageDataItemNames::Macro(m) => m.expand().into_static(),
        MacroOrMessageDataItemNames::MessageDataItemNames(names) => names.clone(),
    };
    for name in names {
        match name {
            MessageDataItemName::Uid => wanted.uid = true,
            MessageDataItemName::Flags => wanted.flags = true,
            MessageDataItemName::Rfc822Size => wanted.size = true,
            MessageDataItemName::InternalDate => wanted.internal_date = true,
            MessageDataItemName::ModSeq => wanted.modseq = true,
            MessageDataItemName::Envelope => wanted.envelope = true,
            MessageDataItemName::BodyStructure => wanted.structure = true,
            MessageDataItemName::Body => wanted.body = true,
            MessageDataItemName::BodyExt {
                section,
                partial,
                peek,
            } => {
                wanted.marks_seen |= !peek;
                wanted.sections.push((section, partial));
            }
            MessageDataItemName::Rfc822 => {
                wanted.rfc822 = true;
                wanted.marks_seen = true;
            }
            MessageDataItemName::Rfc822Header => wanted.rfc822_header = true,
            MessageDataItemName::Rfc822Text => {
                wanted.rfc822_text = true;
                wanted.marks_seen = true;
            }
            MessageDataItemName::Binary {
                section,
                partial,
                peek,
            } => {
                wanted.marks_seen |= !peek;
                wanted.binaries.push((section, partial));
            }
            MessageDataItemName::BinarySize { section } => wanted.binary_sizes.push(section),
        }
    }
    wanted
}

/// A section's bytes, cut to `<start.length>` when asked (RFC 3501 §6.4.5).
fn cut(bytes: Vec<u8>, partial: Partial) -> Vec<u8> {
    match partial {
        None => bytes,
        Some((start, length)) => bytes
            .into_iter()
            .skip(start as usize)
            .take(length.get() as usize)
            .collect(),
    }
}

fn literal(bytes: Vec<u8>) -> NString<'static> {
    Literal::try_from(bytes)
        .map(|literal| NString(Some(IString::from(literal))))
        .unwrap_or(NString(None))
}

/// (sequence number, UID) of each message of the selected folder a set names, in order.
pub(crate) fn targets(selected: &Selected, set: &SequenceSet, by_uid: bool) -> Vec<(u32, u32)> {
    let largest = if by_uid {
        selected.uids.last().unwrap_or(0)
    } else {
        selected.uids.len()
    };
    if largest == 0 {
        return Vec::new();
    }
    let ranges = Ranges::new(set, largest);
    selected
        .uids
        .iter()
        .filter(|&(seq, uid)| ranges.contains(if by_uid { uid } else { seq }))
        .collect()
}

/// The metadata of the messages a FETCH names, read a window at a time from the first target
/// not yet read: every target is found however sparse the set (`1,2000` in a folder of 2,100),
/// and a window holds at most [`MetaWindow::SIZE`] messages whatever the set's size. When the
/// FETCH reads text (not PEEK) in a read-write view, the window's unread targets are marked
/// `\Seen` as it is read, in one store write, not one per message.
#[derive(Default)]
pub(crate) struct MetaWindow {
    metas: std::collections::VecDeque<MessageState>,
    marks_seen: bool,
    /// CHANGEDSINCE: a message not changed after it is left out, so it is not marked either.
    changed_since: Option<u64>,
    /// Targets this FETCH marked `\Seen` (their metadata in the window is as after it).
    marked: std::collections::HashSet<u32>,
    /// The states are read without their flags (left empty): a FETCH that neither tells
    /// FLAGS nor marks anything read.
    without_flags: bool,
}

impl MetaWindow {
    const SIZE: usize = 1_000;

    fn marking_seen(changed_since: Option<u64>) -> Self {
        Self {
            marks_seen: true,
            changed_since,
            ..Self::default()
        }
    }

    /// For a FETCH that needs no flags: the states are read without them.
    fn without_flags() -> Self {
        Self {
            without_flags: true,
            ..Self::default()
        }
    }

    /// Whether this FETCH marked `uid` `\Seen` (so its FLAGS are told).
    fn marked(&self, uid: u32) -> bool {
        self.marked.contains(&uid)
    }

    /// The metadata of `uid` (the first of `targets`, in UID order), or `None` if it is gone.
    pub(crate) async fn find(
        &mut self,
        imap: &Imap,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        targets: &[(u32, u32)],
    ) -> Result<Option<MessageState>> {
        while self.metas.front().is_some_and(|meta| meta.uid < uid) {
            self.metas.pop_front();
        }
        if self.metas.is_empty() {
            // As many as the targets left (at most a window): a dense run is read in one go,
            // a lone target far ahead costs one short read.
            let wanted = targets.len().clamp(1, Self::SIZE);
            let after = uid.saturating_sub(1);
            let read = match self.without_flags {
                true => {
                    imap.store
                        .message_states_without_flags(account, folder, after, wanted)
                        .await
                }
                false => {
                    imap.store
                        .message_states(account, folder, after, wanted)
                        .await
                }
            };
            self.metas = read.map_err(io)?.into();
            if self.marks_seen {
                self.mark_seen(imap, account, folder, targets).await?;
            }
        }
        match self.metas.front() {
            Some(meta) if meta.uid == uid => Ok(self.metas.pop_front()),
            _ => Ok(None),
        }
    }

    /// Marks the window's unread targets `\Seen`, a chunk to a store write.
    async fn mark_seen(
        &mut self,
        imap: &Imap,
        account: &Address,
        folder: &FolderName,
        targets: &[(u32, u32)],
    ) -> Result<()> {
        let is_target = |uid: u32| targets.binary_search_by_key(&uid, |&(_, t)| t).is_ok();
        let unread: Vec<u32> = self
            .metas
            .iter()
            .filter(|meta| {
                !meta.is_seen()
                    && is_target(meta.uid)
                    && self.changed_since.is_none_or(|since| meta.modseq > since)
            })
            .map(|meta| meta.uid)
            .collect();
        let seen = FlagChange::Add(vec!["\\Seen".to_owned()]);
        for chunk in unread.chunks(FLAG_CHANGES_PER_CALL) {
            let updates = imap
                .store
                .change_flags_of(account, folder, chunk, &seen, None)
                .await
                .map_err(io)?;
            for (&uid, update) in chunk.iter().zip(updates) {
                let FlagUpdate::Applied { flags, modseq } = update else {
                    continue;
                };
                // The window is in UID order: found by halving, not a walk per message.
                let at = self.metas.binary_search_by_key(&uid, |meta| meta.uid);
                if let Some(meta) = at.ok().and_then(|at| self.metas.get_mut(at)) {
                    meta.flags = flags;
                    meta.modseq = modseq;
                    self.marked.insert(uid);
                }
            }
        }
        Ok(())
    }
}

impl Imap {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        by_uid: bool,
        changed_since: Option<u64>,
    ) -> Result<()> {
        let mut wanted = wanted(&names, by_uid);
        // CHANGEDSINCE (RFC 7162 §3.1.4): only messages changed after it, with their MODSEQ.
        wanted.modseq |= changed_since.is_some() || session.condstore;
        if wanted.modseq {
            self.enable_condstore(wire, session).await?;
        }
        let Some(selected) = &session.selected else {
            return Ok(());
        };
        let targets = targets(selected, set, by_uid);
        let folder = selected.folder.clone();
        let (selected_read_only, uid_validity) = (selected.read_only, selected.uid_validity);
        // Reading the text (not PEEK) marks the message read, in a read-write view.
        let mut metas = if wanted.marks_seen && !selected_read_only {
            MetaWindow::marking_seen(changed_since)
        } else if wanted.flags {
            MetaWindow::default()
        } else {
            MetaWindow::without_flags()
        };
        let mut marked_any = false;
        for (at, &(seq, uid)) in targets.iter().enumerate() {
            let Some(meta) = metas
                .find(
                    self,
                    account,
                    &folder,
                    uid,
                    targets.get(at..).unwrap_or_default(),
                )
                .await?
            else {
                // Expunged by another session since the view was read.
                continue;
            };
            if changed_since.is_some_and(|since| meta.modseq <= since) {
                continue;
            }
            let Some(seq) = NonZeroU32::new(seq) else {
                continue;
            };
            // The plain items first, then ENVELOPE, BODY and BODYSTRUCTURE, then (`later`)
            // those with the message's bytes: the order they always had, the sections'
            // literals last (imaplib, for one, gives what comes before the first literal as
            // one string).
            let mut response = FetchResponse::new(seq);
            let mut later = Vec::new();
            let mut origins = Vec::new();
            // ENVELOPE, BODY and BODYSTRUCTURE, as the summary kept them written.
            let mut kept: Option<Arc<Summary>> = None;
            if wanted.uid
                && let Some(uid) = NonZeroU32::new(uid)
            {
                response.uid(uid);
            }
            let marking = metas.marked(uid);
            if marking {
                if let Some(selected) = &mut session.selected {
                    selected.own_flags.insert(uid, meta.flags.clone());
                }
                marked_any = true;
            }
            let (flags, modseq) = (&meta.flags, meta.modseq);
            if wanted.flags || marking {
                if let Some(selected) = &mut session.selected {
                    selected.announce_keywords(wire, flags).await?;
                }
                let recent = session
                    .selected
                    .as_ref()
                    .is_some_and(|selected| selected.recent.contains(uid));
                response.flags(flags, recent);
            }
            if wanted.size {
                response.size(meta.size as u32);
            }
            if wanted.modseq
                && let Some(modseq) = NonZeroU64::new(modseq)
            {
                response.modseq(modseq);
            }
            if wanted.internal_date {
                // IMAP dates have whole seconds (found by fuzzing: the stored date has ms).
                let whole = meta
                    .internal_date
                    .with_nanosecond(0)
                    .unwrap_or(meta.internal_date);
                if let Ok(date) = DateTime::try_from(whole.fixed_offset()) {
                    response.internal_date(&date);
                }
            }
            if wanted.needs_body() {
                let summarised = wanted.envelope || wanted.body || wanted.structure;
                // BODY and BODYSTRUCTURE need the whole message parsed (every part of a
                // multipart decoded); ENVELOPE alone needs the header, and a client's first
                // listing of a folder (ENVELOPE of every message, none kept yet) should not
                // read and decode each one's attachments: its summary holds the envelope alone.
                let makes_summary = wanted.body || wanted.structure;
                let mut summary = (summarised || wanted.reads_header_only())
                    .then(|| self.summaries.get(account, &folder, uid_validity, uid))
                    .flatten()
                    .filter(|kept| !makes_summary || kept.is_whole());
                // Header sections alone: the summary's header, when there is one.
                let cached_header = summary
                    .clone()
                    .filter(|_| wanted.reads_header_only() && wanted.needs_text());
                let raw: Cow<'_, [u8]> = if let Some(cached) = &cached_header {
                    Cow::Borrowed(&cached.header)
                } else if summary.is_none() || wanted.needs_text() {
                    // The header alone when nothing else of the message is read (a summary
                    // to make reads all of it; one kept already gave its header above).
                    let header_only = !makes_summary && wanted.reads_header_only();
                    let read = match header_only {
                        true => self.store.message_header(account, &folder, uid).await,
                        false => self.store.message_body(account, &folder, uid).await,
                    };
                    let Some(raw) = read.map_err(io)? else {
                        // Expunged by another session between its metadata and its body: left
                        // out, as one expunged before its metadata was read is, rather than
                        // answered as an empty message (RFC 2180 §4.1.1 lets a server omit
                        // it; a NO would fail the whole FETCH for the messages that are there).
                        continue;
                    };
                    Cow::Owned(raw)
                } else {
                    Cow::Borrowed(&[])
                };
                let parsed = Parsed::new(&raw);
                if summary.is_none() && summarised {
                    let made = match makes_summary {
                        true => Summary::of(&parsed),
                        false => Summary::of_header(&parsed),
                    };
                    summary = Some(
                        self.summaries
                            .keep(account, &folder, uid_validity, uid, made),
                    );
                }
                kept = summary;
                if wanted.rfc822 {
                    later.push(MessageDataItem::Rfc822(literal(raw.to_vec())));
                }
                if wanted.rfc822_header {
                    let header = parsed.section(Some(&Section::Header(None)));
                    later.push(MessageDataItem::Rfc822Header(literal(header)));
                }
                if wanted.rfc822_text {
                    let text = parsed.section(Some(&Section::Text(None)));
                    later.push(MessageDataItem::Rfc822Text(literal(text)));
                }
                for (section, partial) in &wanted.sections {
                    let bytes = cut(parsed.section(section.as_ref()), *partial);
                    later.push(MessageDataItem::BodyExt {
                        section: section.clone(),
                        origin: partial.map(|(start, _)| start),
                        data: literal(bytes),
                    });
                }
                for section in &wanted.binary_sizes {
                    let size = parsed.binary(section).len();
                    later.push(MessageDataItem::BinarySize {
                        section: section.clone(),
                        size: u32::try_from(size).unwrap_or(u32::MAX),
                    });
                }
                for (section, partial) in &wanted.binaries {
                    if let Some((start, _)) = partial {
                        origins.push((binary::item_name(section), *start));
                    }
                    later.push(MessageDataItem::Binary {
                        section: section.clone(),
                        value: binary::value(cut(parsed.binary(section), *partial)),
                    });
                }
            }
            if let Some(summary) = kept.as_deref() {
                let structures = summary.structures.as_ref();
                for (wanted, item) in [
                    (wanted.envelope, Some(&summary.envelope)),
                    (wanted.body, structures.map(|made| &made.body)),
                    (wanted.structure, structures.map(|made| &made.structure)),
                ] {
                    if wanted && let Some(item) = item {
                        response.written(item);
                    }
                }
            }
            response.encoded(later, &origins);
            if let Some(bytes) = response.finish() {
                wire.send_owned(bytes).await?;
            }
        }
        if marked_any {
            self.hints.changed(account);
        }
        Ok(())
    }
}
