//! pushmail's IMAP listener (RFC 3501 with IDLE, UIDPLUS, MOVE, CONDSTORE, QRESYNC, COMPRESS,
//! MULTIAPPEND, LIST-EXTENDED, LIST-STATUS, NOTIFY, ESEARCH, SORT, THREAD, BINARY, SPECIAL-USE, CHILDREN, NAMESPACE, ID, ENABLE, LITERAL+, UNSELECT). Syntax
//! apart from the session: `wire` frames and decodes with imap-codec and `utf7` converts folder
//! names; `state` holds the listener's and a session's types, `reply` the replies, `view` the
//! selected folder as a session sees it; `session` is the state machine with LOGIN and
//! STARTTLS; `commands` hands the other commands to a file per group (`list`, `mailboxes`,
//! `select`, `fetch`, `store`, `search`, `sort`, `thread`, `copy`, `expunge`, `append`, `idle`).
//! The accept loop is `pushmail-listener`'s.

mod append;
mod binary;
mod commands;
mod copy;
mod esearch;
mod expunge;
mod fetch;
mod fetch_response;
mod identity;
mod idle;
mod keywords;
mod list;
mod list_request;
mod login;
mod lost_log;
mod mailboxes;
mod mime;
mod notify;
mod qresync;
mod recent;
mod reply;
mod search;
mod select;
mod session;
mod sort;
mod state;
mod store;
mod subject;
mod summaries;
mod syntax;
mod thread;
mod uids;
mod utf7;
mod view;
mod watch;
mod wire;

pub use state::{Imap, ImapSettings};

/// For the fuzz targets: what FETCH makes of a stored message, item by item.
#[doc(hidden)]
pub mod fuzzing {
    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::core::Vec1;
    use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
    use imap_codec::imap_types::response::{Data, Response};
    use std::num::NonZeroU32;

    /// libFuzzer's panic hook aborts at every panic, even one that is caught. mail-parser
    /// 0.11.9 has `debug_assert!`s in its parse loop that malformed nesting trips (its release
    /// build goes on), and `pushmail_core::message` catches such a panic and reads the message
    /// as unparsed. This lets panics from that loop (`parsers/message.rs`, run only inside a
    /// parse) through to that catch. Any other panic, the parser's accessors' included, still
    /// aborts, and one that nothing catches still fails the input (libfuzzer-sys aborts when
    /// its target unwinds). Called once, before the first input.
    pub fn let_the_parsers_own_checks_through() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let abort = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let in_parse_loop = info.location().is_some_and(|at| {
                    at.file().contains("/mail-parser-")
                        && at.file().ends_with("/src/parsers/message.rs")
                });
                if !in_parse_loop {
                    abort(info);
                }
            }));
        });
    }

    /// Every FETCH item of `raw` that reads the message (ENVELOPE, BODY, BODYSTRUCTURE and the
    /// summary kept of them, the sections of its first parts), encoded as the session would send
    /// them; their length. Panics if a section read alone is not the bytes it is after a full
    /// parse.
    pub fn fetch_every_item(raw: &[u8]) -> usize {
        let parsed = crate::mime::Parsed::new(raw);
        // As FETCH makes them: through the summary it keeps (`summaries.rs`).
        let summary = crate::summaries::Summary::of(&parsed);
        let kept = summary.envelope.len()
            + summary
                .structures
                .as_ref()
                .map_or(0, crate::summaries::Structures::len);
        // BODY and BODYSTRUCTURE of a message of one part are read off its header: the same as
        // from a full parse.
        let whole = crate::mime::Parsed::new(raw);
        whole.parse_whole();
        for extended in [false, true] {
            let item = |parsed: &crate::mime::Parsed<'_>| match extended {
                true => MessageDataItem::BodyStructure(parsed.structure(true)),
                false => MessageDataItem::Body(parsed.structure(false)),
            };
            assert!(
                crate::fetch_response::written_item(item(&whole))
                    == crate::fetch_response::written_item(item(&parsed)),
                "BODY or BODYSTRUCTURE read off the header differs from a full parse's"
            );
        }
        // ENVELOPE without BODY or BODYSTRUCTURE is read off the stored header alone, with no
        // summary: the same bytes as the summary's.
        let header_only = crate::mime::Parsed::new(pushmail_core::message::header_of(raw));
        assert!(
            crate::summaries::Summary::of_header(&header_only).envelope == summary.envelope,
            "ENVELOPE read off the header alone differs from the summary's"
        );
        let mut items = Vec::new();
        let one = NonZeroU32::MIN;
        let two = one.saturating_add(1);
        let paths = [
            vec![one],
            vec![two],
            vec![one, one],
            vec![two, one],
            vec![one, two],
        ];
        let mut sections = vec![None, Some(Section::Header(None)), Some(Section::Text(None))];
        for path in paths {
            let Ok(path) = Vec1::try_from(path) else {
                continue;
            };
            sections.push(Some(Section::Part(Part(path.clone()))));
            sections.push(Some(Section::Mime(Part(path.clone()))));
            sections.push(Some(Section::Header(Some(Part(path.clone())))));
            sections.push(Some(Section::Text(Some(Part(path)))));
        }
        let mut length = kept;
        for section in &sections {
            let bytes = parsed.section(section.as_ref());
            // A FETCH of that one item reads it from the header alone where it can: the same
            // bytes as after the full parse, or what a client sees would hang on which other
            // items it asked for.
            assert!(
                crate::mime::Parsed::new(raw).section(section.as_ref()) == bytes,
                "{section:?} read alone differs from it read after a full parse"
            );
            length += bytes.len();
        }
        items.extend(
            sections
                .into_iter()
                .map(|section| MessageDataItem::BodyExt {
                    section,
                    origin: None,
                    data: imap_codec::imap_types::core::NString(None),
                }),
        );
        let Ok(items) = Vec1::try_from(items) else {
            return length;
        };
        let response = Response::Data(Data::Fetch { seq: one, items });
        length + ResponseCodec::default().encode(&response).dump().len()
    }
}
