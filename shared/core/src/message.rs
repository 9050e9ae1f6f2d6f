//! A message as mail-parser reads it, behind the one check every reader needs: mail-parser's
//! accessors (`from()`, `date()`, `headers()`, …) index its first part, and a parse that found
//! nothing (an empty message, three spaces) has none. Only a parse with a root part leaves
//! here, so no reader can hand an empty parse to code that indexes it; and a panic inside the
//! parser is taken as no parse (`guarded`).

use mail_parser::{Message, MessageParser};

/// Whether [`parse_header`] would find a header field (give `Some`), found with every field's
/// value skipped rather than parsed: the first line mail-parser can name a field decides it,
/// before any value is read, so the answer is the same at a fraction of the cost (FETCH of a
/// header section asks only this of the parse).
pub fn has_header_field(raw: &[u8]) -> bool {
    // Almost every message starts with a field: a first byte mail-parser takes as a name's and
    // a colon on the first line are all it needs to name one.
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    if raw
        .first()
        .is_some_and(|&b| !b.is_ascii_whitespace() && b != b':')
        && first_line.contains(&b':')
    {
        return true;
    }
    static SKIPPING_VALUES: std::sync::LazyLock<MessageParser> = std::sync::LazyLock::new(|| {
        // A parser with any field of its own set reads the others with its default, here
        // one that skips them.
        MessageParser::new()
            .ignore_header(mail_parser::HeaderName::Other("X-Pushmail-None".into()))
            .default_header_ignore()
    });
    guarded(|| SKIPPING_VALUES.parse_headers(raw)).is_some()
}

/// Header fields a message may carry; one with more is refused when it arrives (SMTP DATA,
/// IMAP APPEND). Real mail carries a few dozen (a long relay path, a hundred); every reader of
/// the header is linear in it, and this bounds what one message costs them.
pub const MAX_HEADER_FIELDS: usize = 1_000;

/// MIME parts a message may have, nested ones included; one with more is refused when it
/// arrives. Real mail has tens; each part costs every FETCH of BODYSTRUCTURE a parse and an
/// answer, so this bounds what one stored message can make the server spend.
pub const MAX_MIME_PARTS: usize = 5_000;

/// Why a message is refused for its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    #[error("more than {MAX_HEADER_FIELDS} header fields")]
    HeaderFields,
    #[error("more than {MAX_MIME_PARTS} MIME parts")]
    MimeParts,
}

/// The one check of a message's shape, for every way mail comes in (SMTP DATA, IMAP
/// APPEND): at most [`MAX_HEADER_FIELDS`] header fields and [`MAX_MIME_PARTS`] parts. One
/// pass, no parse: a part is counted at each line that starts with `--` (every MIME boundary
/// does; other such lines only make the count an upper bound).
pub fn check_shape(raw: &[u8]) -> Result<(), TooComplex> {
    if header_field_count(raw) > MAX_HEADER_FIELDS {
        return Err(TooComplex::HeaderFields);
    }
    let boundaries = raw
        .split(|&b| b == b'\n')
        .filter(|line| line.starts_with(b"--"))
        .count();
    if boundaries > MAX_MIME_PARTS {
        return Err(TooComplex::MimeParts);
    }
    Ok(())
}

/// The whole message, parts and all; `None` when the parser found no part.
pub fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    guarded(|| MessageParser::default().parse(raw))
}

/// The top-level header only; `None` when the parser found no part.
pub fn parse_header(raw: &[u8]) -> Option<Message<'_>> {
    guarded(|| MessageParser::default().parse_headers(raw))
}

/// A parse by mail-parser with a root part, or `None`; a panic inside the parser (one of its
/// own checks, tripped by a malformed message) is taken as no parse. Otherwise one odd stored
/// message would end every session that FETCHes it, again at each retry. The panic is still
/// reported by the process's panic hook.
fn guarded<'x>(parse: impl FnOnce() -> Option<Message<'x>>) -> Option<Message<'x>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse))
        .ok()
        .flatten()
        .filter(|message| !message.parts.is_empty())
}

/// The header fields of a message's header (up to the first empty line), counted in one pass
/// without parsing them: a line that does not start with a space or tab starts a field.
pub fn header_field_count(raw: &[u8]) -> usize {
    let mut count = 0;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            count += 1;
        }
    }
    count
}

/// Where a message's header ends: after the first empty line (CRLF or a bare LF), which
/// belongs to the header; the whole message if there is none. The same bound mail-parser's
/// full parse gives the top-level part, found without parsing a field.
pub fn header_end(raw: &[u8]) -> usize {
    match find_blank_line(raw, 0, 0) {
        Ok(end) => end,
        Err(_) => raw.len(),
    }
}

/// The one scan both [`header_end`] and [`HeaderReader`] make: from `from`, with the line not
/// yet ended starting at `line_start`, where the first empty line ends (`Ok`), or where the
/// line left unended starts (`Err`), each byte looked at once.
fn find_blank_line(bytes: &[u8], mut line_start: usize, mut from: usize) -> Result<usize, usize> {
    while let Some(at) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        let end = from + at + 1;
        let line = bytes.get(line_start..end).unwrap_or_default();
        if line == b"\n" || line == b"\r\n" {
            return Ok(end);
        }
        line_start = end;
        from = end;
    }
    Err(line_start)
}

/// A message's header with the blank line that ends it ([`header_end`]): what a FETCH of the
/// top-level header sections reads.
pub fn header_of(raw: &[u8]) -> &[u8] {
    raw.get(..header_end(raw)).unwrap_or(raw)
}

/// A message's header read off a stream of its bytes, chunk by chunk, so that a reader can stop
/// once it has come ([`header_end`]'s bound). Each byte is looked at once, whatever the chunks.
#[derive(Debug, Default)]
pub struct HeaderReader {
    bytes: Vec<u8>,
    /// Where the line not yet ended starts.
    line_start: usize,
    ended: bool,
}

impl HeaderReader {
    /// Takes the next chunk; true once the header's blank line has come (what follows it is
    /// not kept).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.ended {
            return true;
        }
        let scanned = self.bytes.len();
        self.bytes.extend_from_slice(chunk);
        match find_blank_line(&self.bytes, self.line_start, scanned) {
            Ok(end) => {
                self.bytes.truncate(end);
                self.ended = true;
                true
            }
            Err(line_start) => {
                self.line_start = line_start;
                false
            }
        }
    }

    /// The header: up to its blank line, or all that came if none did.
    pub fn into_header(self) -> Vec<u8> {
        self.bytes
    }
}

/// A field's value as written in the message (`offset_start..offset_end`), its own bytes,
/// unfolded and trimmed; `None` when the offsets do not fit.
pub fn raw_value(message: &Message<'_>, field: &mail_parser::Header<'_>) -> Option<Vec<u8>> {
    let value = message
        .raw_message
        .get(field.offset_start as usize..field.offset_end as usize)?;
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Some(unfolded.trim_ascii().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_read_in_chunks_ends_where_header_end_says() {
        let messages: [&[u8]; 7] = [
            b"Subject: a\r\nFrom: b\r\n\r\ntext\r\n\r\nmore",
            b"Subject: bare\n\ntext\n",
            b"Subject: no body",
            b"\r\nbody after a blank first line",
            b"",
            b"Subject: folded\r\n \r\n continued\r\n\r\n",
            b"Subject: cr\r\r\n\n",
        ];
        for raw in messages {
            let has_blank_line = raw
                .split_inclusive(|&b| b == b'\n')
                .any(|line| line == b"\n" || line == b"\r\n");
            // Every split into two chunks, and one byte at a time.
            for cut in 0..=raw.len() {
                let (first, second) = raw.split_at(cut);
                let mut reader = HeaderReader::default();
                let ended = reader.push(first) || reader.push(second);
                assert_eq!(ended, has_blank_line, "{raw:?} cut at {cut}");
                assert_eq!(reader.into_header(), header_of(raw), "{raw:?} cut at {cut}");
            }
            let mut reader = HeaderReader::default();
            for byte in raw {
                reader.push(std::slice::from_ref(byte));
            }
            assert_eq!(reader.into_header(), header_of(raw));
        }
    }

    #[test]
    fn a_parse_without_parts_is_no_message() {
        for odd in [&b""[..], b"   ", b"\r\n", b"\0", b"\xff\xfe", b"\r\n\r\n"] {
            // Whatever the parser makes of it, what leaves here can be asked for its header.
            if let Some(message) = parse_message(odd) {
                let _ = (message.from(), message.date(), message.subject());
            }
            if let Some(message) = parse_header(odd) {
                let _ = (message.from(), message.date(), message.subject());
            }
        }
    }

    #[test]
    fn a_message_of_too_many_fields_or_parts_is_refused() {
        let fields = "X: y\r\n".repeat(MAX_HEADER_FIELDS + 1);
        assert_eq!(
            check_shape(fields.as_bytes()),
            Err(TooComplex::HeaderFields)
        );
        let parts = format!("Subject: p\r\n\r\n{}", "--b\r\n".repeat(MAX_MIME_PARTS + 1));
        assert_eq!(check_shape(parts.as_bytes()), Err(TooComplex::MimeParts));
        assert_eq!(check_shape(b"Subject: ok\r\n\r\n--b\r\n"), Ok(()));
    }

    #[test]
    fn the_header_ends_where_the_full_parse_says() {
        for raw in [
            &b"Subject: a\r\n\r\nbody\r\n"[..],
            b"Subject: a\n\nbody\n",
            b"Subject: a\r\nFrom: b\r\n\r\n",
            b"Subject: a\r\n\r\n\r\nbody",
            b"Subject: a\r\n folded\r\n\r\nx",
            b"\r\nno header at all\r\n",
            b"Subject: no body",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\na\r\n--x--\r\n",
        ] {
            let full = parse_message(raw).map(|m| m.parts[0].offset_body as usize);
            assert_eq!(
                Some(header_end(raw)),
                full,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    /// The cheap check agrees with the parse it stands for, on odd headers and on bytes made up
    /// at random (a fixed seed: the same inputs each run).
    #[test]
    fn a_header_field_is_found_exactly_when_the_parse_finds_one() {
        let mut inputs: Vec<Vec<u8>> = [
            &b""[..],
            b"   ",
            b"\r\n",
            b"\r\nSubject: after the blank line\r\n",
            b"no colon here\r\n\r\nbody",
            b": no name\r\n",
            b"  : spaces only\r\n",
            b"Subject: a",
            b"Subject:",
            b"X:\r\n",
            b"garbage line\r\nFrom: a@b\r\n\r\nbody",
            b"Fr om: a\r\n",
            b"\xff\xfe: x\r\n",
            b"To: <unterminated\r\n\r\n",
            b"\0\0\0",
        ]
        .iter()
        .map(|raw| raw.to_vec())
        .collect();
        let alphabet = b"ab: \r\n\t<>\"(),;=-\xc3";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let raw = (0..len)
                .map(|at| alphabet[((seed >> (at % 50)) as usize + at * 7) % alphabet.len()])
                .collect();
            inputs.push(raw);
        }
        for raw in inputs {
            assert_eq!(
                has_header_field(&raw),
                parse_header(&raw).is_some(),
                "{:?}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn header_fields_are_counted_up_to_the_blank_line() {
        let raw = b"A: 1\r\nB: 2\r\n  folded\r\n\tmore\r\nC: 3\r\n\r\nD: not a field\r\n";
        assert_eq!(header_field_count(raw), 3);
        assert_eq!(header_field_count(b""), 0);
        assert_eq!(header_field_count(b"X: y"), 1);
    }

    /// Found by fuzzing stored messages (`infra/bench/imap_fuzz.sh`): nested message/rfc822
    /// parts with bare CRs make mail-parser 0.11.9 trip one of its own checks
    /// (`debug_assert!`, "Invalid part ID, could not find multipart"), which panics wherever
    /// debug assertions are on. The message is then read as having no parts, as one the parser
    /// found nothing in, and never panics a FETCH of it.
    #[test]
    fn a_message_that_trips_the_parser_reads_as_no_parse() {
        let raw = b"o\nContent-Type:multipart/; boundary=x\r\n\r\n--x\rd\nContent-Type: message/rfc822\n\r\nd;x\r\nContent-Type: message/rfc822\n\r\ni\n\r\r\n--x--\r";
        let parsed = parse_message(raw);
        if cfg!(debug_assertions) {
            assert!(
                parsed.is_none(),
                "the parser's own check took it as no parse"
            );
        }
        // The header alone parses either way.
        assert!(parse_header(raw).is_some());
    }
}
