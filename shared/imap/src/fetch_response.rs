//! One FETCH response as it goes on the wire. The items that are plain values (UID, FLAGS,
//! RFC822.SIZE, MODSEQ, INTERNALDATE) are written here straight into the response's bytes; a
//! summary's items (ENVELOPE, BODY, BODYSTRUCTURE) are copied as kept written; the items that
//! carry the message's bytes (sections, RFC822.*, BINARY) are written by imap-codec. imap-codec
//! wrote every item before, and for imaptest's FETCHes of up to a hundred messages its building
//! of each response (its fragments, then a copy, then one more to join a summary's items) was
//! a tenth of FETCH's cost. The plain items are written as imap-codec writes them (the tests
//! below hold the two side by side), so a client sees the same bytes.

use std::io::Write;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use imap_codec::imap_types::response::{Data, Response};

use crate::binary;

/// What closes every FETCH response.
const FETCH_END: &[u8] = b")\r\n";

/// A FETCH response of one message, its items written as they are added.
pub(crate) struct FetchResponse {
    seq: NonZeroU32,
    bytes: Vec<u8>,
    items: usize,
}

impl FetchResponse {
    pub fn new(seq: NonZeroU32) -> Self {
        let mut bytes = Vec::with_capacity(128);
        let _ = write!(bytes, "* {seq} FETCH (");
        Self {
            seq,
            bytes,
            items: 0,
        }
    }

    /// Where the next item goes: after a space, unless it is the first.
    fn next_item(&mut self) -> &mut Vec<u8> {
        if self.items > 0 {
            self.bytes.push(b' ');
        }
        self.items += 1;
        &mut self.bytes
    }

    pub fn uid(&mut self, uid: NonZeroU32) {
        let _ = write!(self.next_item(), "UID {uid}");
    }

    /// FLAGS, as [`flag_items`] tells them.
    pub fn flags(&mut self, flags: &[String], recent: bool) {
        let out = self.next_item();
        out.extend_from_slice(b"FLAGS (");
        let mut first = true;
        for flag in sayable(flags) {
            if !first {
                out.push(b' ');
            }
            first = false;
            let _ = write!(out, "{flag}");
        }
        if recent {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(b"\\Recent");
        }
        out.push(b')');
    }

    pub fn size(&mut self, size: u32) {
        let _ = write!(self.next_item(), "RFC822.SIZE {size}");
    }

    pub fn modseq(&mut self, modseq: NonZeroU64) {
        let _ = write!(self.next_item(), "MODSEQ ({modseq})");
    }

    pub fn internal_date(&mut self, date: &DateTime) {
        let written = date.as_ref().format("%d-%b-%Y %H:%M:%S %z");
        let _ = write!(self.next_item(), "INTERNALDATE \"{written}\"");
    }

    /// An item kept written (a summary's).
    pub fn written(&mut self, item: &[u8]) {
        if !item.is_empty() {
            self.next_item().extend_from_slice(item);
        }
    }

    /// Items written by imap-codec, with `<origin>` after the BINARY items of a partial fetch.
    pub fn encoded(&mut self, items: Vec<MessageDataItem<'static>>, origins: &[(String, u32)]) {
        let Ok(items) = Vec1::try_from(items) else {
            return;
        };
        let response = Response::Data(Data::Fetch {
            seq: self.seq,
            items,
        });
        let encoded = binary::encode_with_origins(&response, origins);
        self.written(items_of(&encoded, self.seq));
    }

    /// The response's bytes, or `None` if it has no item (nothing to say of the message).
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.items == 0 {
            return None;
        }
        self.bytes.extend_from_slice(FETCH_END);
        Some(self.bytes)
    }
}

/// FLAGS as told: the stored flags IMAP can say, and `\Recent` where this session holds it
/// (never stored).
pub(crate) fn flag_items(flags: &[String], recent: bool) -> MessageDataItem<'static> {
    let mut items: Vec<FlagFetch<'static>> = sayable(flags)
        .map(|flag| FlagFetch::Flag(flag.into_static()))
        .collect();
    if recent {
        items.push(FlagFetch::Recent);
    }
    MessageDataItem::Flags(items)
}

/// The stored flags IMAP can say (a name that is no flag is left out).
fn sayable(flags: &[String]) -> impl Iterator<Item = Flag<'_>> {
    flags
        .iter()
        .filter_map(|name| Flag::try_from(name.as_str()).ok())
}

/// The items of `encoded`, imap-codec's writing of a FETCH response of `seq`: what is inside its
/// parentheses.
fn items_of(encoded: &[u8], seq: NonZeroU32) -> &[u8] {
    encoded
        .strip_prefix(format!("* {seq} FETCH (").as_bytes())
        .and_then(|items| items.strip_suffix(FETCH_END))
        .unwrap_or_default()
}

/// One FETCH item as imap-codec writes it inside a response's parentheses.
pub(crate) fn written_item(item: MessageDataItem<'_>) -> Vec<u8> {
    let seq = NonZeroU32::MIN;
    let items = Vec1::from(item);
    let fetch = Response::Data(Data::Fetch { seq, items });
    items_of(&ResponseCodec::default().encode(&fetch).dump(), seq).to_vec()
}

#[cfg(test)]
#[path = "fetch_response_tests.rs"]
mod tests;
