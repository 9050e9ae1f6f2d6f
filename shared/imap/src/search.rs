//! SEARCH and UID SEARCH over the selected folder's metadata: flags, dates, sizes, the envelope's
//! From/To/Cc/Subject, sequence and UID sets, and their AND/OR/NOT. A key that would need the
//! message text (BODY, TEXT, HEADER) is refused with BAD rather than answered wrongly.

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use pushmail_core::mailbox::MessageMeta;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::select::Selected;
use crate::session::{Imap, Result, Session, no_or_bad, ok};
use crate::wire::Wire;

/// A key this server cannot decide from metadata.
struct Unsupported;

fn has_flag(meta: &MessageMeta, flag: &str) -> bool {
    meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn contains(haystack: Option<&str>, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    haystack.is_some_and(|text| text.to_lowercase().contains(&needle))
}

fn any_contains(values: &[String], needle: &[u8]) -> bool {
    values.iter().any(|v| contains(Some(v), needle))
}

/// Whether message `seq` (UID `meta.uid`) matches `key`.
fn matches(
    key: &SearchKey<'_>,
    seq: u32,
    meta: &MessageMeta,
    selected: &Selected,
) -> std::result::Result<bool, Unsupported> {
    let date = meta.internal_date.date_naive();
    Ok(match key {
        SearchKey::All => true,
        SearchKey::And(keys) => {
            for key in keys.as_ref() {
                if !matches(key, seq, meta, selected)? {
                    return Ok(false);
                }
            }
            true
        }
        SearchKey::Or(a, b) => matches(a, seq, meta, selected)? || matches(b, seq, meta, selected)?,
        SearchKey::Not(key) => !matches(key, seq, meta, selected)?,
        SearchKey::SequenceSet(set) => {
            let largest = NonZeroU32::new(selected.uids.len() as u32).unwrap_or(NonZeroU32::MIN);
            set.iter(largest).any(|n| n.get() == seq)
        }
        SearchKey::Uid(set) => {
            let largest = selected
                .uids
                .last()
                .and_then(|&u| NonZeroU32::new(u))
                .unwrap_or(NonZeroU32::MIN);
            set.iter(largest).any(|n| n.get() == meta.uid)
        }
        SearchKey::Seen => has_flag(meta, "\\Seen"),
        SearchKey::Unseen => !has_flag(meta, "\\Seen"),
        SearchKey::Flagged => has_flag(meta, "\\Flagged"),
        SearchKey::Unflagged => !has_flag(meta, "\\Flagged"),
        SearchKey::Answered => has_flag(meta, "\\Answered"),
        SearchKey::Unanswered => !has_flag(meta, "\\Answered"),
        SearchKey::Deleted => has_flag(meta, "\\Deleted"),
        SearchKey::Undeleted => !has_flag(meta, "\\Deleted"),
        SearchKey::Draft => has_flag(meta, "\\Draft"),
        SearchKey::Undraft => !has_flag(meta, "\\Draft"),
        SearchKey::Keyword(atom) => has_flag(meta, atom.as_ref()),
        SearchKey::Unkeyword(atom) => !has_flag(meta, atom.as_ref()),
        // No session is ever first to see a message here: nothing is \Recent.
        SearchKey::Recent | SearchKey::New => false,
        SearchKey::Old => true,
        SearchKey::Since(day) => date >= *day.as_ref(),
        SearchKey::Before(day) => date < *day.as_ref(),
        SearchKey::On(day) => date == *day.as_ref(),
        SearchKey::Larger(size) => meta.size > u64::from(*size),
        SearchKey::Smaller(size) => meta.size < u64::from(*size),
        SearchKey::From(text) => contains(meta.envelope.from.as_deref(), text.as_ref()),
        SearchKey::To(text) => any_contains(&meta.envelope.to, text.as_ref()),
        SearchKey::Cc(text) => any_contains(&meta.envelope.cc, text.as_ref()),
        SearchKey::Subject(text) => contains(meta.envelope.subject.as_deref(), text.as_ref()),
        _ => return Err(Unsupported),
    })
}

impl Imap {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn search<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        criteria: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await;
        };
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .messages(account, &selected.folder, after, 1000)
                .await
                .map_err(std::io::Error::other)?;
            let Some(last) = page.last() else { break };
            after = last.uid;
            for meta in &page {
                // Only what this view knows of: later messages come with their EXISTS.
                let Ok(position) = selected.uids.binary_search(&meta.uid) else {
                    continue;
                };
                let seq = position as u32 + 1;
                let mut hit = true;
                for key in criteria.as_ref() {
                    match matches(key, seq, meta, selected) {
                        Ok(true) => {}
                        Ok(false) => {
                            hit = false;
                            break;
                        }
                        Err(Unsupported) => {
                            return no_or_bad(
                                wire,
                                tag,
                                StatusKind::Bad,
                                "Search key not supported (only flags, dates, sizes, sets and envelope fields)",
                            )
                            .await;
                        }
                    }
                }
                if hit && let Some(number) = NonZeroU32::new(if by_uid { meta.uid } else { seq }) {
                    found.push(number);
                }
            }
        }
        wire.send(&Response::Data(Data::Search(found, None)))
            .await?;
        ok(wire, tag, "SEARCH done").await
    }
}
