//! How a message's metadata is stored in `mail_messages`: its state (UID, size, MODSEQ, internal
//! date, flags) as one line of plain fields, then its envelope as JSON:
//!
//! ```text
//! m1 <uid> <size> <modseq> <internal date: unix seconds> <nanoseconds> [<flag> ...]\n<envelope JSON>
//! ```
//!
//! The state is what SELECT, STATUS, EXPUNGE, FETCH's flags and every flag change read, for every
//! message of a folder at times: read from this line it costs no JSON parse and never touches
//! the envelope, and a flag change copies the envelope's text as it is. Records written before
//! this form (one JSON object, so starting with `{`) are still read, and are rewritten in it the
//! next time they change; a message whose flags could not be told apart on the line (a flag
//! empty or with a space or line break, which IMAP's atoms never are) is stored as such an
//! object too.

use std::marker::PhantomData;

use chrono::DateTime;
use pushmail_core::mailbox::{
    Envelope, FlagMark, MessageMeta, MessageState, is_deleted_flag, is_seen_flag,
};

use super::{TxResult, decode, encode};
use crate::StoreError;

const TAG: &str = "m1 ";

/// A message record decoded: its state alone, or its whole metadata.
pub(super) trait MessageRecord: Sized {
    fn from_record(raw: &str) -> TxResult<Self>;
}

impl MessageRecord for MessageState {
    fn from_record(raw: &str) -> TxResult<Self> {
        match split(raw, Flags::Read)? {
            Some((state, _)) => Ok(state),
            None => decode(raw),
        }
    }
}

/// A message's state with its flags left unread (empty), for readers that need none: the
/// flags are most of what decoding a state costs.
pub(super) struct Unflagged(pub MessageState);

impl MessageRecord for Unflagged {
    fn from_record(raw: &str) -> TxResult<Self> {
        match split(raw, Flags::Left)? {
            Some((state, _)) => Ok(Self(state)),
            None => decode(raw).map(Self),
        }
    }
}

/// The flag a [`Marked`] record is read for.
pub(super) trait MarkedFlag: Send + 'static {
    fn is(flag: &str) -> bool;
}

/// `\Deleted`, for EXPUNGE's walk of a folder.
pub(super) struct Deleted;

impl MarkedFlag for Deleted {
    fn is(flag: &str) -> bool {
        is_deleted_flag(flag)
    }
}

/// `\Seen`, for STATUS's count of the unread.
pub(super) struct Seen;

impl MarkedFlag for Seen {
    fn is(flag: &str) -> bool {
        is_seen_flag(flag)
    }
}

/// A message's UID and whether it carries the flag `F`, read from the state's line without
/// building its flags or its date: what a walk of a whole folder that counts or picks by one
/// flag needs.
pub(super) struct Marked<F>(pub FlagMark, PhantomData<F>);

impl<F: MarkedFlag> MessageRecord for Marked<F> {
    fn from_record(raw: &str) -> TxResult<Self> {
        let mark = |uid, set| Self(FlagMark { uid, set }, PhantomData);
        let Some((line, _)) = state_line(raw)? else {
            // An older record: read whole.
            let state = MessageState::from_record(raw)?;
            let set = state.flags.iter().any(|flag| F::is(flag));
            return Ok(mark(state.uid, set));
        };
        let mut fields = line.split(' ');
        let uid = fields.next().and_then(|field| field.parse::<u32>().ok());
        let set = fields.skip(FIELDS_BEFORE_FLAGS - 1).any(F::is);
        match uid {
            Some(uid) => Ok(mark(uid, set)),
            None => Err(corrupt(raw).into()),
        }
    }
}

/// Whether [`split`] reads a state's flags.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flags {
    Read,
    Left,
}

impl MessageRecord for MessageMeta {
    fn from_record(raw: &str) -> TxResult<Self> {
        let Some((state, envelope)) = split(raw, Flags::Read)? else {
            return decode(raw);
        };
        let envelope: Envelope = decode(envelope)?;
        Ok(MessageMeta {
            uid: state.uid,
            flags: state.flags,
            internal_date: state.internal_date,
            size: state.size,
            modseq: state.modseq,
            envelope,
        })
    }
}

/// The record of a message newly stored.
pub(super) fn message_record(meta: &MessageMeta) -> TxResult<String> {
    let state_line = |flags: &[String]| {
        let state = MessageState {
            uid: meta.uid,
            flags: flags.to_vec(),
            internal_date: meta.internal_date,
            size: meta.size,
            modseq: meta.modseq,
        };
        line(&state)
    };
    match state_line(&meta.flags) {
        Some(line) => Ok(line + &encode(&meta.envelope)?),
        None => encode(meta),
    }
}

/// `raw` (a message's record) with its state replaced by `state` (the same message's), its
/// envelope kept as it is.
pub(super) fn restated(raw: &str, state: &MessageState) -> TxResult<String> {
    if let (Some((_, envelope)), Some(line)) = (split(raw, Flags::Left)?, line(state)) {
        return Ok(line + envelope);
    }
    let meta = MessageMeta::from_record(raw)?;
    message_record(&MessageMeta {
        uid: state.uid,
        flags: state.flags.clone(),
        internal_date: state.internal_date,
        size: state.size,
        modseq: state.modseq,
        envelope: meta.envelope,
    })
}

/// The state's line, with its line break; `None` if a flag cannot be told apart on it.
fn line(state: &MessageState) -> Option<String> {
    use std::fmt::Write;
    if state
        .flags
        .iter()
        .any(|flag| flag.is_empty() || flag.contains([' ', '\n']))
    {
        return None;
    }
    let date = state.internal_date;
    let mut line = format!(
        "{TAG}{} {} {} {} {}",
        state.uid,
        state.size,
        state.modseq,
        date.timestamp(),
        date.timestamp_subsec_nanos()
    );
    for flag in &state.flags {
        let _ = write!(line, " {flag}");
    }
    line.push('\n');
    Some(line)
}

/// The state (its flags as `flags` says) and the envelope's JSON of a record in this form;
/// `None` for an older record.
fn split(raw: &str, flags: Flags) -> TxResult<Option<(MessageState, &str)>> {
    let Some((line, envelope)) = state_line(raw)? else {
        return Ok(None);
    };
    let mut fields = line.split(' ');
    let uid = fields.next().and_then(|field| field.parse::<u32>().ok());
    let size = fields.next().and_then(|field| field.parse::<u64>().ok());
    let modseq = fields.next().and_then(|field| field.parse::<u64>().ok());
    let seconds = fields.next().and_then(|field| field.parse::<i64>().ok());
    let nanos = fields.next().and_then(|field| field.parse::<u32>().ok());
    let internal_date = seconds
        .zip(nanos)
        .and_then(|(seconds, nanos)| DateTime::from_timestamp(seconds, nanos));
    let (Some(uid), Some(size), Some(modseq), Some(internal_date)) =
        (uid, size, modseq, internal_date)
    else {
        return Err(corrupt(raw).into());
    };
    let flags = match flags {
        Flags::Read => fields.map(str::to_owned).collect(),
        Flags::Left => Vec::new(),
    };
    let state = MessageState {
        uid,
        flags,
        internal_date,
        size,
        modseq,
    };
    Ok(Some((state, envelope)))
}

/// The fields of a state's line before its flags: UID, size, MODSEQ and the date's two.
const FIELDS_BEFORE_FLAGS: usize = 5;

/// A record in this form as its state's line (without the tag and the line break) and its
/// envelope's JSON; `None` for an older record.
fn state_line(raw: &str) -> TxResult<Option<(&str, &str)>> {
    let Some(rest) = raw.strip_prefix(TAG) else {
        return Ok(None);
    };
    match rest.split_once('\n') {
        Some(parts) => Ok(Some(parts)),
        None => Err(corrupt(raw).into()),
    }
}

/// The error for a record that cannot be read, with its start.
fn corrupt(raw: &str) -> StoreError {
    StoreError::Corrupt(format!("message record {:?}", cut(raw)))
}

/// The start of a record, for an error message.
fn cut(raw: &str) -> &str {
    let end = raw.char_indices().nth(80).map_or(raw.len(), |(at, _)| at);
    raw.get(..end).unwrap_or_default()
}

#[cfg(test)]
#[path = "message_record_tests.rs"]
mod tests;
