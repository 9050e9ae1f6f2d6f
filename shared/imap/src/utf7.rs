//! IMAP's modified UTF-7 for folder names (RFC 3501 §5.1.3): printable ASCII stands for itself
//! (`&` as `&-`), anything else is `&` + UTF-16BE in base64 with `,` for `/` + `-`. Folder
//! names are kept as UTF-8 and converted at the wire, here, both ways (`mailbox_name`,
//! `folder_name`).

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::mailbox::Mailbox;
use pushmail_core::folder::{DELIMITER, FolderName};

fn engine() -> GeneralPurpose {
    let alphabet =
        Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
            .expect("the modified base64 alphabet");
    GeneralPurpose::new(&alphabet, NO_PAD)
}

/// A UTF-8 name as IMAP sends it.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            match c {
                '&' => out.push_str("&-"),
                c => out.push(c),
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// A name as IMAP sent it, in UTF-8; `None` when it is not modified UTF-7 (a shift that does
/// not end, bad base64 or UTF-16, or a shift spelling what should be plain ASCII). Raw UTF-8,
/// which some clients send, is taken as it is.
pub fn decode(wire: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(wire).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after.find('-')?;
        let encoded = &after[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = engine().decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            let decoded = String::from_utf16(&units).ok()?;
            if decoded.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&decoded);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The IMAP name of a folder.
pub(crate) fn mailbox_name(name: &FolderName) -> Mailbox<'static> {
    if name.is_inbox() {
        return Mailbox::Inbox;
    }
    AString::try_from(encode(name.as_str()))
        .map(Mailbox::from)
        .unwrap_or(Mailbox::Inbox)
}

/// A folder name from IMAP's, if it is one pushmail accepts. A trailing delimiter is dropped
/// (RFC 3501 §6.3.3: CREATE `a/` creates `a`).
pub(crate) fn folder_name(mailbox: &Mailbox<'_>) -> Option<FolderName> {
    match mailbox {
        Mailbox::Inbox => Some(FolderName::inbox()),
        Mailbox::Other(other) => {
            let name = decode(other.as_ref())?;
            FolderName::parse(name.strip_suffix(DELIMITER).unwrap_or(&name)).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rfc_examples() {
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        for name in ["Entwürfe", "A & B", "Gesendete Objekte", "😀 fun", "&"] {
            assert_eq!(decode(encode(name).as_bytes()).as_deref(), Some(name));
        }
        assert_eq!(encode("A & B"), "A &- B");
    }

    #[test]
    fn refuses_what_is_not_modified_utf7() {
        assert_eq!(decode(b"&U,BTFw"), None, "no end");
        assert_eq!(decode(b"&AGE-"), None, "ASCII spelled in base64");
        assert_eq!(decode(b"&2D3-"), None, "a lone surrogate");
        assert_eq!(decode(b"&!!-"), None, "not base64");
        assert_eq!(decode("Entwürfe".as_bytes()).as_deref(), Some("Entwürfe"));
    }
}
