//! BINARY (RFC 3516): a part's content with its Content-Transfer-Encoding undone (base64,
//! quoted-printable; anything else as stored), its decoded size, and the literal8 (`~{n}`) for
//! content that a plain literal cannot carry.

use std::num::NonZeroU32;

use base64::Engine;
use imap_codec::ResponseCodec;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::imap_types::core::{IString, Literal, LiteralMode, NString, NString8};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::response::Response;

/// Undoes a Content-Transfer-Encoding.
pub(crate) fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => {
            // Line breaks and stray spaces inside the text are not part of it (RFC 2045 §6.8).
            let text: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .collect();
            let text = match text.iter().position(|&b| b == b'=') {
                Some(pad) => &text[..pad],
                None => &text[..],
            };
            // Lenient as mail readers are: stray bits at the end are dropped, and a text cut
            // short by a character is decoded as far as it goes.
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let whole = if text.len() % 4 == 1 {
                text.len() - 1
            } else {
                text.len()
            };
            lenient.decode(&text[..whole]).unwrap_or_default()
        }
        Some("quoted-printable") => quoted_printable(body),
        _ => body.to_vec(),
    }
}

/// RFC 2045 §6.7: `=XX` is a byte, `=` at a line's end (spaces after it allowed) joins the next
/// line, and spaces at a line's end are not part of it.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    for line in lines {
        let (text, ending) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => match line.strip_suffix(b"\n") {
                Some(text) => (text, &b"\r\n"[..]),
                None => (line, &b""[..]),
            },
        };
        let text = text
            .iter()
            .rposition(|b| !matches!(b, b' ' | b'\t'))
            .map_or(&text[..0], |last| &text[..=last]);
        let (text, soft) = match text.strip_suffix(b"=") {
            Some(text) => (text, true),
            None => (text, false),
        };
        let mut at = 0;
        while let Some(&byte) = text.get(at) {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            match (byte, hex(text.get(at + 1)), hex(text.get(at + 2))) {
                (b'=', Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    at += 3;
                }
                _ => {
                    out.push(byte);
                    at += 1;
                }
            }
        }
        if !soft {
            out.extend_from_slice(ending);
        }
    }
    out
}

/// The content as FETCH BINARY carries it: a literal8 if it holds a NUL or a CR or LF not in
/// a CRLF pair (RFC 3516 §4.2: what a plain literal cannot carry), else a plain literal.
pub(crate) fn value(data: Vec<u8>) -> NString8<'static> {
    let binary = data.contains(&0)
        || data.iter().enumerate().any(|(at, &b)| {
            (b == b'\r' && data.get(at + 1) != Some(&b'\n'))
                || (b == b'\n' && (at == 0 || data.get(at - 1) != Some(&b'\r')))
        });
    if binary {
        return NString8::Literal8(Literal8 {
            data: data.into(),
            mode: LiteralMode::Sync,
        });
    }
    match Literal::try_from(data) {
        Ok(literal) => NString8::NString(NString(Some(IString::from(literal)))),
        Err(_) => NString8::NString(NString(None)),
    }
}

/// The name of a BINARY item as encoded: `BINARY[1.2]`.
pub(crate) fn item_name(section: &[NonZeroU32]) -> String {
    let path: Vec<String> = section.iter().map(ToString::to_string).collect();
    format!("BINARY[{}]", path.join("."))
}

/// A response encoded, with `<origin>` put after the BINARY items of a partial fetch (imap-types
/// has no place for it in the response): each name is looked for in the command's own lines
/// only, never in a literal's content, in the order the items were asked.
pub(crate) fn encode_with_origins(response: &Response<'_>, origins: &[(String, u32)]) -> Vec<u8> {
    let mut pending = origins.iter().peekable();
    let mut out = Vec::new();
    for fragment in ResponseCodec::default().encode(response) {
        match fragment {
            Fragment::Line { data } => {
                let mut line = data;
                while let Some((name, origin)) = pending.peek() {
                    let needle = format!("{name} ");
                    let Some(at) = find(&line, needle.as_bytes()) else {
                        break;
                    };
                    let insert_at = at + name.len();
                    line.splice(insert_at..insert_at, format!("<{origin}>").into_bytes());
                    pending.next();
                }
                out.extend(line);
            }
            Fragment::Literal { data, .. } => out.extend(data),
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_quoted_printable_are_undone() {
        assert_eq!(
            decode(
                Some("base64"),
                b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n"
            ),
            b"hello world"
        );
        assert_eq!(decode(Some("BASE64"), b"aGVsbG8gd29"), b"hello wo");
        let qp = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let decoded = decode(Some("quoted-printable"), qp);
        assert_eq!(
            String::from_utf8_lossy(&decoded),
            "hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
        );
        assert_eq!(decode(Some("7bit"), b"as is=41"), b"as is=41");
        assert_eq!(decode(Some("quoted-printable"), b"=4"), b"=4");
    }

    #[test]
    fn what_a_literal_cannot_carry_goes_in_a_literal8() {
        assert!(matches!(value(b"a\r\nb".to_vec()), NString8::NString(_)));
        for binary in [&b"a\0b"[..], b"a\rb", b"a\nb", b"\nb"] {
            assert!(matches!(value(binary.to_vec()), NString8::Literal8(_)));
        }
    }
}
