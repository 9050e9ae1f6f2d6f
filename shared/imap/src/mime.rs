//! A stored message as FETCH shows it: its sections (RFC 3501 §6.4.5: `HEADER`, `TEXT`,
//! `HEADER.FIELDS`, part numbers, `MIME`), ENVELOPE and BODYSTRUCTURE. mail-parser finds the
//! parts and their offsets; the bytes returned are always the stored ones, never re-encoded.

use std::num::NonZeroU32;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, Vec1};
use imap_codec::imap_types::envelope::{Address as ImapAddress, Envelope};
use imap_codec::imap_types::fetch::Section;
use mail_parser::{Address, Message, MessagePart, MimeHeaders, PartType};
use pushmail_core::message::{
    has_header_field, header_end, header_of, parse_header, parse_message, raw_value,
};

#[path = "mime_structure.rs"]
mod body_structure;
use body_structure::{single, structure, text_plain};

/// Nested messages and multiparts deeper than this are shown as opaque parts: a structure
/// costs no more than its size.
const MAX_DEPTH: usize = 16;

/// A message parsed at most once for every item of one FETCH, and only as far as they need:
/// ENVELOPE and the top-level HEADER, HEADER.FIELDS and TEXT need the header alone, and so do
/// part 1, BODY and BODYSTRUCTURE of a message of one part, so the body's parts are not decoded
/// for them (profiling showed mail-parser's decoding as the largest cost of imaptest's FETCHes).
pub(crate) struct Parsed<'x> {
    raw: &'x [u8],
    message: std::cell::OnceCell<Option<Message<'x>>>,
    header: std::cell::OnceCell<Option<Message<'x>>>,
    /// Whether the header has a field, when nothing more of it was needed.
    has_header: std::cell::OnceCell<bool>,
}

/// One part: the message (or embedded message) it belongs to and its index there.
#[derive(Clone, Copy)]
struct PartRef<'m, 'x> {
    message: &'m Message<'x>,
    id: usize,
}

impl<'m, 'x> PartRef<'m, 'x> {
    fn part(&self) -> Option<&'m MessagePart<'x>> {
        self.message.parts.get(self.id)
    }

    fn slice(&self, from: u32, to: u32) -> &'m [u8] {
        self.message
            .raw_message
            .get(from as usize..to as usize)
            .unwrap_or_default()
    }

    /// The part's own header (an RFC 822 header for a message, else its MIME header), with the
    /// blank line that ends it.
    fn header(&self) -> &'m [u8] {
        self.part()
            .map(|p| self.slice(p.offset_header, p.offset_body))
            .unwrap_or_default()
    }

    fn body(&self) -> &'m [u8] {
        self.part()
            .map(|p| self.slice(p.offset_body, p.offset_end))
            .unwrap_or_default()
    }

    /// The text (RFC 3501 §6.4.5 TEXT) of the message a message/rfc822 part `container`
    /// holds: everything after its header to the end of the part, a multipart's epilogue too
    /// (which the inner root part leaves out). The parser reads an inner message in the outer
    /// one's bytes, offsets shared; one it decoded first has bytes of its own, and its root
    /// already runs to their end.
    fn text_within(&self, container: &PartRef<'m, 'x>) -> &'m [u8] {
        let (Some(p), Some(outer)) = (self.part(), container.part()) else {
            return &[];
        };
        let same_bytes = std::ptr::eq(
            self.message.raw_message.as_ptr(),
            container.message.raw_message.as_ptr(),
        );
        if same_bytes {
            self.slice(p.offset_body, outer.offset_end)
        } else {
            self.body()
        }
    }

    fn children(&self) -> Vec<PartRef<'m, 'x>> {
        match self.part().map(|p| &p.body) {
            Some(PartType::Multipart(ids)) => ids
                .iter()
                .map(|&id| PartRef {
                    message: self.message,
                    id: id as usize,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The message a message/rfc822 part holds.
    fn embedded(&self) -> Option<PartRef<'m, 'x>> {
        match self.part().map(|p| &p.body) {
            Some(PartType::Message(message)) => Some(PartRef { message, id: 0 }),
            _ => None,
        }
    }

    fn is_multipart(&self) -> bool {
        matches!(self.part().map(|p| &p.body), Some(PartType::Multipart(_)))
    }

    /// The numbered parts of a message: its children if it is a multipart, else its body is
    /// part 1 (RFC 3501 §6.4.5).
    fn numbered(&self) -> Vec<PartRef<'m, 'x>> {
        if self.is_multipart() {
            self.children()
        } else {
            vec![*self]
        }
    }
}

impl<'x> Parsed<'x> {
    pub fn new(raw: &'x [u8]) -> Self {
        Self {
            raw,
            message: std::cell::OnceCell::new(),
            header: std::cell::OnceCell::new(),
            has_header: std::cell::OnceCell::new(),
        }
    }

    fn message(&self) -> Option<&Message<'x>> {
        self.message
            .get_or_init(|| parse_message(self.raw))
            .as_ref()
    }

    /// The top-level header parsed (or the whole message, if that was parsed already).
    fn header_only(&self) -> Option<&Message<'x>> {
        if let Some(message) = self.message.get() {
            return message.as_ref();
        }
        self.header.get_or_init(|| parse_header(self.raw)).as_ref()
    }

    fn root(&self) -> Option<PartRef<'_, 'x>> {
        self.message().map(|message| PartRef { message, id: 0 })
    }

    /// The top-level header with its blank line, and the text after it (both empty for a
    /// message the parser found nothing in, as for any section of it).
    fn split(&self) -> (&'x [u8], &'x [u8]) {
        // What a parse made of it, or (HEADER, TEXT and HEADER.FIELDS need no more) whether a
        // parse would find a field, without parsing any. A message without a field can still
        // hold a body after a blank first line: only the parse tells, so that the answer is the
        // same whether or not the message was parsed already.
        let found = match (self.message.get(), self.header.get()) {
            (Some(message), _) => message.is_some(),
            (None, Some(Some(_))) => true,
            (None, Some(None)) => self.message().is_some(),
            (None, None) => {
                *self.has_header.get_or_init(|| has_header_field(self.raw))
                    || self.message().is_some()
            }
        };
        match found {
            true => self.raw.split_at(header_end(self.raw)),
            false => (&[], &[]),
        }
    }

    fn part(&self, path: &Vec1<NonZeroU32>) -> Option<PartRef<'_, 'x>> {
        let mut parts = self.root()?.numbered();
        let mut current = None;
        for number in path.as_ref() {
            let part = *parts.get(number.get() as usize - 1)?;
            parts = match part.embedded() {
                Some(inner) => inner.numbered(),
                None => part.children(),
            };
            current = Some(part);
        }
        current
    }

    /// The bytes of a section (`None`: the whole message); empty for a part that is not
    /// there, as other servers answer.
    pub fn section(&self, section: Option<&Section<'_>>) -> Vec<u8> {
        let Some(section) = section else {
            return self.raw.to_vec();
        };
        match section {
            Section::Header(None) => return self.split().0.to_vec(),
            Section::Text(None) => return self.split().1.to_vec(),
            Section::HeaderFields(None, names) | Section::HeaderFieldsNot(None, names) => {
                let keep = matches!(section, Section::HeaderFields(..));
                let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
                return header_fields(self.split().0, &names, keep);
            }
            _ => {}
        }
        // HEADER/TEXT of a part: of the message the part holds.
        let message_of = |path: &Option<imap_codec::imap_types::fetch::Part>| match path {
            None => self.root(),
            Some(path) => self.part(&path.0).and_then(|part| part.embedded()),
        };
        let bytes: &[u8] = match section {
            Section::Part(path) if path.0.as_ref() == [NonZeroU32::MIN] && self.is_one_part() => {
                self.split().1
            }
            Section::Part(path) => self.part(&path.0).map(|p| p.body()).unwrap_or_default(),
            Section::Mime(path) => self.part(&path.0).map(|p| p.header()).unwrap_or_default(),
            Section::Header(path) => message_of(path).map(|m| m.header()).unwrap_or_default(),
            Section::Text(None) => self.root().map(|m| m.body()).unwrap_or_default(),
            Section::Text(Some(path)) => self
                .part(&path.0)
                .and_then(|container| {
                    container
                        .embedded()
                        .map(|inner| inner.text_within(&container))
                })
                .unwrap_or_default(),
            Section::HeaderFields(path, names) | Section::HeaderFieldsNot(path, names) => {
                let keep = matches!(section, Section::HeaderFields(..));
                let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
                let header = message_of(path).map(|m| m.header()).unwrap_or_default();
                return header_fields(header, &names, keep);
            }
        };
        bytes.to_vec()
    }

    /// Whether the message is not a multipart and holds no message, so that its part 1 is its
    /// TEXT (RFC 3501 §6.4.5), read off the header alone when its Content-Type names neither:
    /// BODY[1] of a plain message, what a client that shows its text fetches, then costs no
    /// parse of its body (a full parse decodes all of it). A header naming a multipart or a
    /// message leaves it to the parse, which may still find one part (a multipart without its
    /// boundary), so the answer is the same whether or not the message was parsed already.
    fn is_one_part(&self) -> bool {
        self.one_part_header().is_some()
            || self
                .root()
                .is_some_and(|root| !root.is_multipart() && root.embedded().is_none())
    }

    /// The top-level header's part, when the message was not parsed as a whole and its header
    /// alone says it is of one part (its Content-Type names no multipart and no message).
    fn one_part_header(&self) -> Option<&MessagePart<'x>> {
        if self.message.get().is_some() {
            return None;
        }
        let part = self.header_only()?.parts.first()?;
        let composite = part.content_type().is_some_and(|kind| {
            kind.ctype().eq_ignore_ascii_case("multipart")
                || kind.ctype().eq_ignore_ascii_case("message")
        });
        (!composite).then_some(part)
    }

    /// Parses the message as a whole, as an item that needs its parts would (for the fuzz
    /// target's check that what is read off the header alone is the same).
    pub(crate) fn parse_whole(&self) {
        let _ = self.message();
    }

    /// BINARY[<part>]: the part's content with its transfer encoding undone; the whole
    /// message as stored for no part; empty for a part that is not there.
    pub fn binary(&self, path: &[NonZeroU32]) -> Vec<u8> {
        let Ok(path) = Vec1::try_from(path.to_vec()) else {
            return self.raw.to_vec();
        };
        let Some(part) = self.part(&path) else {
            return Vec::new();
        };
        let encoding = part.part().and_then(|p| p.content_transfer_encoding());
        crate::binary::decode(encoding, part.body())
    }

    /// The top-level header as stored, with its blank line: all that HEADER, HEADER.FIELDS
    /// (NOT) and RFC822.HEADER read.
    pub fn header(&self) -> &'x [u8] {
        header_of(self.raw)
    }

    pub fn envelope(&self) -> Envelope<'static> {
        match self.header_only() {
            Some(message) => envelope(message),
            // Nothing parsed (an empty message, three spaces): every field NIL, as Dovecot
            // answers, never mail-parser's accessors on a message without parts.
            None => empty_envelope(),
        }
    }

    /// BODYSTRUCTURE (`extended`) or BODY.
    pub fn structure(&self, extended: bool) -> BodyStructure<'static> {
        // One part: its header and its bytes are all the structure tells, no part decoded.
        // Its bytes are its TEXT, as BODY[1] answers (the parser may end an odd header
        // elsewhere), so that a client fetches as many bytes as the structure told it of.
        if let Some(header) = self.one_part_header() {
            return single(header, self.split().1, extended, None);
        }
        match self.root() {
            Some(root) if !root.is_multipart() && root.embedded().is_none() => match root.part() {
                Some(part) => single(part, self.split().1, extended, None),
                None => structure(root, extended, 0),
            },
            Some(root) => structure(root, extended, 0),
            None => text_plain(self.raw.len()),
        }
    }
}

/// The fields of a header named (`keep`) or not named in `names`, with the blank line.
fn header_fields(header: &[u8], names: &[&[u8]], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keeping = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = name.trim_ascii();
            keeping = names.iter().any(|n| n.eq_ignore_ascii_case(name)) == keep;
        }
        if keeping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// An IMAP string of any bytes (quoted when it can be, else a literal); NIL for NUL bytes,
/// which no IMAP string carries.
fn nstring(bytes: Option<&[u8]>) -> NString<'static> {
    NString(bytes.and_then(|b| IString::try_from(b.to_vec()).ok()))
}

fn istring(text: &str) -> IString<'static> {
    IString::try_from(text.to_owned())
        .unwrap_or_else(|_| IString::try_from("").expect("the empty string"))
}

/// A header's value as written (unfolded, trimmed), for ENVELOPE's date, subject and ids.
fn raw_header(message: &Message<'_>, name: &str) -> Option<Vec<u8>> {
    let header = message
        .parts
        .first()?
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    raw_value(message, header)
}

/// A display name as ENVELOPE carries it: plain ASCII as it is, anything else as an RFC 2047
/// encoded word (the header was decoded by the parser).
fn display_name(name: &str) -> Vec<u8> {
    if name.is_ascii() {
        return name.as_bytes().to_vec();
    }
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(name.as_bytes());
    format!("=?UTF-8?B?{encoded}?=").into_bytes()
}

fn addresses(list: Option<&Address<'_>>) -> Vec<ImapAddress<'static>> {
    let one = |name: Option<&str>, address: Option<&str>| {
        // A source route (`<@route:user@domain>`) goes in the address's adl.
        let (route, address) = match address {
            Some(a) if a.starts_with('@') => match a.split_once(':') {
                Some((route, rest)) => (Some(route), Some(rest)),
                None => (None, Some(a)),
            },
            other => (None, other),
        };
        let (mailbox, host) = match address.and_then(|a| a.rsplit_once('@')) {
            Some((mailbox, host)) => (Some(mailbox.as_bytes()), Some(host.as_bytes())),
            None => (address.map(str::as_bytes), Some(&b""[..])),
        };
        ImapAddress {
            name: nstring(name.map(display_name).as_deref()),
            adl: nstring(route.map(str::as_bytes)),
            mailbox: nstring(mailbox),
            host: nstring(host),
        }
    };
    // A member with no address (a comment alone, `group: (foo) ;`) is no address.
    let addressed =
        |a: &&mail_parser::Addr<'_>| a.address.as_deref().is_some_and(|a| !a.is_empty());
    let mut out = Vec::new();
    match list {
        Some(Address::List(list)) => {
            out.extend(
                list.iter()
                    .filter(addressed)
                    .map(|a| one(a.name.as_deref(), a.address.as_deref())),
            );
        }
        Some(Address::Group(groups)) => {
            for group in groups {
                // RFC 3501 §7.4.2: a group is its name with a NIL host, the members, and a
                // NIL mailbox and host.
                if let Some(name) = &group.name {
                    out.push(ImapAddress {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: nstring(Some(name.as_bytes())),
                        host: NString(None),
                    });
                }
                out.extend(
                    group
                        .addresses
                        .iter()
                        .filter(addressed)
                        .map(|a| one(a.name.as_deref(), a.address.as_deref())),
                );
                if group.name.is_some() {
                    out.push(ImapAddress {
                        name: NString(None),
                        adl: NString(None),
                        mailbox: NString(None),
                        host: NString(None),
                    });
                }
            }
        }
        None => {}
    }
    out
}

fn empty_envelope() -> Envelope<'static> {
    Envelope {
        date: NString(None),
        subject: NString(None),
        from: Vec::new(),
        sender: Vec::new(),
        reply_to: Vec::new(),
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        in_reply_to: NString(None),
        message_id: NString(None),
    }
}

fn envelope(message: &Message<'_>) -> Envelope<'static> {
    // An embedded message/rfc822 the parser found empty has no root part either.
    if message.parts.is_empty() {
        return empty_envelope();
    }
    let from = addresses(message.from());
    let or_from =
        |list: Vec<ImapAddress<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: nstring(raw_header(message, "Date").as_deref()),
        subject: nstring(raw_header(message, "Subject").as_deref()),
        sender: or_from(addresses(message.sender())),
        reply_to: or_from(addresses(message.reply_to())),
        from: from.clone(),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        bcc: addresses(message.bcc()),
        in_reply_to: nstring(raw_header(message, "In-Reply-To").as_deref()),
        message_id: nstring(raw_header(message, "Message-ID").as_deref()),
    }
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
