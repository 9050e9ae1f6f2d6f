//! Sections, ENVELOPE and BODYSTRUCTURE of a multipart message with an attachment and an
//! embedded message, encoded by imap-codec as clients read them.

use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{AString, Vec1};
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use imap_codec::imap_types::response::{Data, Response};

use super::Parsed;

const MESSAGE: &[u8] = b"From: =?UTF-8?B?SsO2cmc=?= <joerg@example.org>\r\n\
To: alice@example.com, Team: bob@example.com;\r\n\
Subject: Quarterly\r\n numbers\r\n\
Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <q1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
See attached.\r\n\
Second line.\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"q.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"q.pdf\"\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: carol@example.net\r\n\
Subject: Forwarded\r\n\
\r\n\
Inner body\r\n\
--outer--\r\n";

fn path(numbers: &[u32]) -> Part {
    Part(
        Vec1::try_from(
            numbers
                .iter()
                .map(|&n| NonZeroU32::new(n).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap(),
    )
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn encoded(item: MessageDataItem<'static>) -> String {
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::new(1).unwrap(),
        items: Vec1::from(item),
    });
    String::from_utf8(ResponseCodec::default().encode(&response).dump()).unwrap()
}

#[test]
fn sections_are_the_stored_bytes() {
    let parsed = Parsed::new(MESSAGE);
    assert_eq!(parsed.section(None), MESSAGE);
    let header = text(parsed.section(Some(&Section::Header(None))));
    assert!(
        header.starts_with("From: =?UTF-8?B?SsO2cmc=?=")
            && header.ends_with("boundary=\"outer\"\r\n\r\n")
    );
    assert!(
        text(parsed.section(Some(&Section::Text(None)))).starts_with("preamble\r\n--outer\r\n")
    );
    assert_eq!(
        text(parsed.section(Some(&Section::Part(path(&[1]))))),
        "See attached.\r\nSecond line."
    );
    assert_eq!(
        text(parsed.section(Some(&Section::Part(path(&[2]))))),
        "JVBERi0xLjQK"
    );
    assert!(text(parsed.section(Some(&Section::Mime(path(&[2]))))).contains("filename=\"q.pdf\""));
    assert_eq!(
        text(parsed.section(Some(&Section::Header(Some(path(&[3])))))),
        "From: carol@example.net\r\nSubject: Forwarded\r\n\r\n"
    );
    assert_eq!(
        text(parsed.section(Some(&Section::Part(path(&[3, 1]))))),
        "Inner body"
    );
    assert_eq!(parsed.section(Some(&Section::Part(path(&[9])))), b"");
    let names = Vec1::try_from(vec![
        AString::try_from("subject").unwrap(),
        AString::try_from("DATE").unwrap(),
    ])
    .unwrap();
    assert_eq!(
        text(parsed.section(Some(&Section::HeaderFields(None, names.clone())))),
        "Subject: Quarterly\r\n numbers\r\nDate: Fri, 27 Nov 2026 10:00:00 +0100\r\n\r\n"
    );
    let rest = text(parsed.section(Some(&Section::HeaderFieldsNot(None, names))));
    assert!(rest.starts_with("From:") && !rest.contains("Subject") && rest.ends_with("\r\n\r\n"));
}

#[test]
fn a_single_part_message_is_its_own_part_one() {
    let raw = b"Subject: hi\r\n\r\nJust text\r\n";
    let parsed = Parsed::new(raw);
    assert_eq!(
        text(parsed.section(Some(&Section::Part(path(&[1]))))),
        "Just text\r\n"
    );
    let structure = encoded(MessageDataItem::BodyStructure(parsed.structure(true)));
    assert!(
        structure.contains("(\"TEXT\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1"),
        "{structure}"
    );
}

#[test]
fn part_one_of_a_message_of_one_part_is_its_text_parsed_or_not() {
    let body_one = || Section::Part(path(&[1]));
    // (message, whether its header alone says it is one part)
    let messages: [(&[u8], bool); 9] = [
        (b"Subject: hi\r\n\r\nJust text\r\n", true),
        (b"Subject: hi\n\nbare line feeds\n", true),
        (
            b"Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =\r\nsoft break\r\n",
            true,
        ),
        (
            b"Content-Type: Application/Octet-Stream\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n",
            true,
        ),
        (b"Subject: a header and no blank line", true),
        // A multipart without its boundary, or whose boundary never comes: one part after all.
        (b"Content-Type: multipart/mixed\r\n\r\nno parts\r\n", false),
        (
            b"Content-Type: MULTIPART/mixed; boundary=gone\r\n\r\n--elsewhere\r\nx\r\n",
            false,
        ),
        // No field at all: only the parse finds the body.
        (b"\r\nbody only\r\n", false),
        // A message that holds a message: part 1 is that message, all of it.
        (
            b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nInner\r\n",
            false,
        ),
    ];
    for (raw, header_says) in messages {
        let fresh = Parsed::new(raw);
        let part_one = fresh.section(Some(&body_one()));
        assert_eq!(
            fresh.message.get().is_none(),
            header_says,
            "{:?}: parsed as a whole only when its header leaves it open",
            String::from_utf8_lossy(raw)
        );
        let parsed_first = Parsed::new(raw);
        let _ = parsed_first.structure(true);
        assert_eq!(
            parsed_first.section(Some(&body_one())),
            part_one,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        for text_of in [Parsed::new(raw), parsed_first] {
            assert_eq!(
                text_of.section(Some(&Section::Text(None))),
                part_one,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
    // And a multipart's part 1 is still its first part.
    assert_eq!(
        text(Parsed::new(MESSAGE).section(Some(&body_one()))),
        "See attached.\r\nSecond line."
    );
}

#[test]
fn envelope_and_bodystructure_as_clients_read_them() {
    let parsed = Parsed::new(MESSAGE);
    let envelope = encoded(MessageDataItem::Envelope(parsed.envelope()));
    assert!(
        envelope.contains("ENVELOPE (\"Fri, 27 Nov 2026 10:00:00 +0100\" \"Quarterly numbers\""),
        "{envelope}"
    );
    assert!(
        envelope.contains("((\"=?UTF-8?B?SsO2cmc=?=\" NIL \"joerg\" \"example.org\"))"),
        "{envelope}"
    );
    // A group: its name with a NIL host, the members, then NIL NIL.
    assert!(
        envelope
            .contains("(NIL NIL \"Team\" NIL)(NIL NIL \"bob\" \"example.com\")(NIL NIL NIL NIL)"),
        "{envelope}"
    );
    assert!(
        envelope.ends_with("NIL \"<q1@example.org>\"))\r\n"),
        "{envelope}"
    );
    let structure = encoded(MessageDataItem::BodyStructure(parsed.structure(true)));
    for part in [
        "(\"TEXT\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 27 1 NIL)",
        "(\"application\" \"pdf\" (\"name\" \"q.pdf\") NIL NIL \"BASE64\" 12 NIL (\"attachment\" (\"filename\" \"q.pdf\")))",
        "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 57 (NIL \"Forwarded\"",
        "(\"TEXT\" \"plain\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 0 NIL) 3 NIL)",
        "\"mixed\" (\"boundary\" \"outer\") NIL)",
    ] {
        assert!(structure.contains(part), "{part} in {structure}");
    }
    let body = encoded(MessageDataItem::Body(parsed.structure(false)));
    assert!(
        body.contains("\"mixed\")") && !body.contains("attachment"),
        "{body}"
    );
}

#[test]
fn every_section_read_alone_is_what_it_is_after_a_full_parse() {
    // `fetch_every_item` asserts it, section by section, for what the fuzzer stores too.
    let odd: [&[u8]; 13] = [
        // Found by fuzzing: a header the parser ends elsewhere than at a blank line (there is
        // none), its structure told from the parser's bounds and its TEXT from the blank line.
        b"From: \"a\" <b@c>om: \"a\" <b@c>\x00\x00\x00\r\nTo:\x00L g: d@e, f@g;\r\n\
Content-Ty :mpeultipart/mixed; boundary=x\n-\r-\x80\n\r\r\nConte\xff\xff\xff\xffnt-\\ype: \
message/rfc822\r\n\r-\nSp-\r\n",
        b"",
        b"   ",
        b"\r\n",
        b"\r\n\r\n",
        b"\0",
        b"\xff\xfe",
        b"\r\nbody only\r\n",
        b"Subject: a header and no blank line",
        b"not a field\r\nSubject: x\r\n\r\nbody\r\n",
        b"Subject: x\r\nnot a field\r\n\r\nbody\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaQ0KDQpi\r\n",
    ];
    for raw in odd.into_iter().chain([MESSAGE]) {
        crate::fuzzing::fetch_every_item(raw);
    }
}

#[test]
fn the_structure_of_a_message_of_one_part_comes_from_its_header() {
    let messages: [&[u8]; 4] = [
        b"Subject: hi\r\n\r\nJust text\r\nand more\r\n",
        b"Content-Type: text/html; charset=utf-8\r\nContent-ID: <x@y>\r\n\
Content-Description: a page\r\nContent-Transfer-Encoding: quoted-printable\r\n\
Content-Disposition: inline; filename=p.html\r\n\r\n<p>caf=C3=A9</p>\r\n",
        b"Content-Type: application/pdf; name=q.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n\
JVBERi0xLjQK\r\nJVBERi0xLjQK\r\n",
        b"Subject: bare\n\nline feeds\n",
    ];
    for raw in messages {
        let from_header = Parsed::new(raw);
        let structure = encoded(MessageDataItem::BodyStructure(from_header.structure(true)));
        let body = encoded(MessageDataItem::Body(from_header.structure(false)));
        assert!(
            from_header.message.get().is_none(),
            "{:?} parsed as a whole",
            String::from_utf8_lossy(raw)
        );
        let whole = Parsed::new(raw);
        whole.parse_whole();
        assert_eq!(
            encoded(MessageDataItem::BodyStructure(whole.structure(true))),
            structure
        );
        assert_eq!(encoded(MessageDataItem::Body(whole.structure(false))), body);
    }
}
