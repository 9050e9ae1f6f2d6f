//! SEARCH and UID SEARCH: flags, dates, sizes, MODSEQ, the envelope's From/To/Cc/Subject,
//! sequence and UID sets and their AND/OR/NOT from the metadata; BODY, TEXT, HEADER, BCC and
//! SENTBEFORE/ON/SINCE from the message itself, read only when a key needs it (no index: each
//! such search reads the folder, as servers without full-text search do). Text matches are
//! case-insensitive substrings of the decoded text (RFC 3501 §6.4.4).

use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use pushmail_core::mailbox::{Flagged, MessageMeta};
use pushmail_core::message::parse_message;
use pushmail_core::types::Address;
use pushmail_store::MessagePages;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::esearch;
use crate::reply::{Result, io, no_or_bad, ok};
use crate::state::{Imap, Session};
use crate::uids::Ranges;
use crate::view::Selected;
use crate::wire::Wire;

/// A key this server cannot decide from metadata.
struct Unsupported;

fn contains(haystack: Option<&str>, needle: &[u8]) -> bool {
    let needle = String::from_utf8_lossy(needle).to_lowercase();
    haystack.is_some_and(|text| text.to_lowercase().contains(&needle))
}

/// Whether message `seq` (UID `meta.uid`) matches `key`.
/// What a message's text keys look at, decoded once per message.
struct MessageText {
    /// Every header field, `name: value` decoded, one per line.
    header: String,
    body: String,
    sent: Option<chrono::NaiveDate>,
}

impl MessageText {
    fn new(raw: &[u8]) -> Self {
        let Some(message) = parse_message(raw) else {
            return Self {
                header: String::new(),
                body: String::from_utf8_lossy(raw).to_lowercase(),
                sent: None,
            };
        };
        let mut header = String::new();
        for field in message.headers() {
            let value = message
                .raw_message
                .get(field.offset_start as usize..field.offset_end as usize)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let value = match field.value.as_text() {
                Some(decoded) => decoded.to_owned(),
                None => value.replace(['\r', '\n'], ""),
            };
            header.push_str(&format!("{}: {}\n", field.name.as_str(), value.trim()));
        }
        let mut body = String::new();
        for i in 0..message.text_body.len() {
            body.extend(message.body_text(i));
        }
        for i in 0..message.html_body.len() {
            body.extend(message.body_html(i));
        }
        Self {
            header: header.to_lowercase(),
            body: body.to_lowercase(),
            // The date as written in the Date: field, in its own zone (RFC 3501 §6.4.4: "the
            // Date: header", not converted to UTC).
            sent: message.date().and_then(|d| {
                chrono::NaiveDate::from_ymd_opt(
                    i32::from(d.year),
                    u32::from(d.month),
                    u32::from(d.day),
                )
            }),
        }
    }

    /// A field's values contain `needle` (an empty needle: the field is there).
    fn field_contains(&self, name: &[u8], needle: &[u8]) -> bool {
        let name = String::from_utf8_lossy(name).to_lowercase();
        let needle = String::from_utf8_lossy(needle).to_lowercase();
        self.header.lines().any(|line| {
            line.split_once(": ")
                .is_some_and(|(field, value)| field == name && value.contains(&needle))
        })
    }
}

pub(crate) fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(key) => uses_modseq(key),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

/// Whether a key reads the message's body (BODY, TEXT), not only its header.
fn reads_body(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(reads_body),
        SearchKey::Or(a, b) => reads_body(a) || reads_body(b),
        SearchKey::Not(key) => reads_body(key),
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        _ => false,
    }
}

/// Whether a key needs the message text.
fn needs_text(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_text),
        SearchKey::Or(a, b) => needs_text(a) || needs_text(b),
        SearchKey::Not(key) => needs_text(key),
        SearchKey::Body(_)
        | SearchKey::Text(_)
        | SearchKey::Header(..)
        | SearchKey::Bcc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Cc(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

fn matches(
    key: &SearchKey<'_>,
    seq: u32,
    meta: &MessageMeta,
    selected: &Selected,
    text: Option<&MessageText>,
) -> std::result::Result<bool, Unsupported> {
    let date = meta.internal_date.date_naive();
    let lower = |needle: &[u8]| String::from_utf8_lossy(needle).to_lowercase();
    Ok(match key {
        SearchKey::All => true,
        SearchKey::And(keys) => {
            for key in keys.as_ref() {
                if !matches(key, seq, meta, selected, text)? {
                    return Ok(false);
                }
            }
            true
        }
        SearchKey::Or(a, b) => {
            matches(a, seq, meta, selected, text)? || matches(b, seq, meta, selected, text)?
        }
        SearchKey::Not(key) => !matches(key, seq, meta, selected, text)?,
        SearchKey::SequenceSet(set) => Ranges::new(set, selected.uids.len()).contains(seq),
        SearchKey::Uid(set) => {
            Ranges::new(set, selected.uids.last().unwrap_or(0)).contains(meta.uid)
        }
        SearchKey::Seen => meta.has_flag("\\Seen"),
        SearchKey::Unseen => !meta.has_flag("\\Seen"),
        SearchKey::Flagged => meta.has_flag("\\Flagged"),
        SearchKey::Unflagged => !meta.has_flag("\\Flagged"),
        SearchKey::Answered => meta.has_flag("\\Answered"),
        SearchKey::Unanswered => !meta.has_flag("\\Answered"),
        SearchKey::Deleted => meta.has_flag("\\Deleted"),
        SearchKey::Undeleted => !meta.has_flag("\\Deleted"),
        SearchKey::Draft => meta.has_flag("\\Draft"),
        SearchKey::Undraft => !meta.has_flag("\\Draft"),
        SearchKey::Keyword(atom) => meta.has_flag(atom.as_ref()),
        SearchKey::Unkeyword(atom) => !meta.has_flag(atom.as_ref()),
        SearchKey::Recent => selected.recent.contains(meta.uid),
        SearchKey::New => selected.recent.contains(meta.uid) && !meta.is_seen(),
        SearchKey::Old => !selected.recent.contains(meta.uid),
        SearchKey::Since(day) => date >= *day.as_ref(),
        SearchKey::Before(day) => date < *day.as_ref(),
        SearchKey::On(day) => date == *day.as_ref(),
        SearchKey::Larger(size) => meta.size > u64::from(*size),
        SearchKey::Smaller(size) => meta.size < u64::from(*size),
        // The whole field as written, display names, comments and groups too (RFC 3501
        // §6.4.4: "contains the specified string"), not only the addresses.
        // Or the addresses as parsed (comments inside an address left out).
        SearchKey::From(needle) => {
            text.ok_or(Unsupported)?
                .field_contains(b"from", needle.as_ref())
                || contains(meta.envelope.from.as_deref(), needle.as_ref())
        }
        SearchKey::To(needle) => {
            text.ok_or(Unsupported)?
                .field_contains(b"to", needle.as_ref())
                || meta
                    .envelope
                    .to
                    .iter()
                    .any(|a| contains(Some(a), needle.as_ref()))
        }
        SearchKey::Cc(needle) => {
            text.ok_or(Unsupported)?
                .field_contains(b"cc", needle.as_ref())
                || meta
                    .envelope
                    .cc
                    .iter()
                    .any(|a| contains(Some(a), needle.as_ref()))
        }
        SearchKey::Subject(needle) => contains(meta.envelope.subject.as_deref(), needle.as_ref()),
        SearchKey::ModSequence { modseq, .. } => meta.modseq >= *modseq,
        SearchKey::Body(needle) => text
            .ok_or(Unsupported)?
            .body
            .contains(&lower(needle.as_ref())),
        SearchKey::Text(needle) => {
            let text = text.ok_or(Unsupported)?;
            let needle = lower(needle.as_ref());
            text.header.contains(&needle) || text.body.contains(&needle)
        }
        SearchKey::Header(name, needle) => text
            .ok_or(Unsupported)?
            .field_contains(name.as_ref(), needle.as_ref()),
        SearchKey::Bcc(needle) => text
            .ok_or(Unsupported)?
            .field_contains(b"bcc", needle.as_ref()),
        SearchKey::SentBefore(day) => text
            .ok_or(Unsupported)?
            .sent
            .is_some_and(|d| d < *day.as_ref()),
        SearchKey::SentOn(day) => text
            .ok_or(Unsupported)?
            .sent
            .is_some_and(|d| d == *day.as_ref()),
        SearchKey::SentSince(day) => text
            .ok_or(Unsupported)?
            .sent
            .is_some_and(|d| d >= *day.as_ref()),
    })
}

/// A key this server cannot decide: the command is answered BAD.
pub(crate) struct UnsupportedKey;

impl Imap {
    /// Hands `each` the messages of the view matching every key, in order (sequence number,
    /// metadata), a page at a time: what it keeps is the caller's choice.
    pub(crate) async fn matching(
        &self,
        account: &Address,
        selected: &Selected,
        criteria: &[SearchKey<'static>],
        mut each: impl FnMut(u32, MessageMeta) + Send,
    ) -> Result<std::result::Result<(), UnsupportedKey>> {
        let reads_text = criteria.iter().any(needs_text);
        // Keys on header fields alone (FROM, HEADER, SENTON, …) read the stored header, not
        // every message's attachments.
        let reads_body = criteria.iter().any(reads_body);
        let mut pages = MessagePages::new(&*self.store, account, &selected.folder);
        while let Some(page) = pages.next().await.map_err(io)? {
            for meta in page {
                // Only what this view knows of: later messages come with their EXISTS.
                let Some(seq) = selected.uids.sequence_of(meta.uid) else {
                    continue;
                };
                let text = match reads_text {
                    true => {
                        let (store, folder) = (&self.store, &selected.folder);
                        let raw = match reads_body {
                            true => store.message_body(account, folder, meta.uid).await,
                            false => store.message_header(account, folder, meta.uid).await,
                        };
                        raw.map_err(io)?.map(|raw| MessageText::new(&raw))
                    }
                    false => None,
                };
                let mut hit = true;
                for key in criteria {
                    match matches(key, seq, &meta, selected, text.as_ref()) {
                        Ok(true) => {}
                        Ok(false) => {
                            hit = false;
                            break;
                        }
                        Err(Unsupported) => return Ok(Err(UnsupportedKey)),
                    }
                }
                if hit {
                    each(seq, meta);
                }
            }
        }
        Ok(Ok(()))
    }

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
        let matched = self
            .matching(account, selected, criteria.as_ref(), |seq, meta| {
                found.push((if by_uid { meta.uid } else { seq }, meta.modseq));
            })
            .await?;
        if matched.is_err() {
            return no_or_bad(wire, tag, StatusKind::Bad, "Search key not supported").await;
        }
        // RFC 7162 §3.1.5: a search by MODSEQ tells the highest MODSEQ it found.
        let by_modseq = criteria.as_ref().iter().any(uses_modseq);
        if let Some(returns) = session.search_return {
            let line = esearch::response(tag.inner(), by_uid, &found, returns, by_modseq);
            wire.send_raw(line.as_bytes()).await?;
            return ok(wire, tag, "SEARCH done").await;
        }
        let highest_modseq = found.iter().map(|(_, modseq)| *modseq).max().unwrap_or(0);
        let found = found
            .iter()
            .filter_map(|(n, _)| NonZeroU32::new(*n))
            .collect();
        let modseq = NonZeroU64::new(highest_modseq).filter(|_| by_modseq);
        wire.send(&Response::Data(Data::Search(found, modseq)))
            .await?;
        ok(wire, tag, "SEARCH done").await
    }
}

#[cfg(test)]
mod tests {
    use super::MessageText;

    #[test]
    fn header_keys_see_the_same_from_the_stored_header_as_from_the_whole_message() {
        let messages: [&[u8]; 6] = [
            b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.org>\r\nTo: Team: a@example.com;\r\n\
              Date: Sat, 28 Nov 2026 01:00:00 +0100\r\nSubject: s\r\n\
              Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
              Content-Type: text/plain\r\n\r\nFrom: not a field of the message\r\n--b--\r\n",
            b"Subject: folded\r\n continued\r\n\r\nbody\r\n",
            b"Subject: bare line feeds\n\nbody\n",
            b"Subject: no blank line",
            b"\r\nbody only\r\n",
            b"",
        ];
        for raw in messages {
            let whole = MessageText::new(raw);
            let header = MessageText::new(pushmail_core::message::header_of(raw));
            assert_eq!(
                (header.header, header.sent),
                (whole.header, whole.sent),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
