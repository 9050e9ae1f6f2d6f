//! IMAP extensions over real TCP. SORT (RFC 5256, with SORT=DISPLAY) and THREAD (ORDEREDSUBJECT,
//! REFERENCES): the orders and trees of a small folder, by number and by UID, with search
//! criteria, and the refusals (an unknown charset, no folder selected). BINARY (RFC 3516): parts
//! decoded, their sizes, partial fetches with their origin, and APPEND of a literal8.

use pushmail_tests::Harness;
use pushmail_tests::imap::{Peer, deliver, last, listener, logged_in, loopback_plaintext};
use tokio::io::AsyncWriteExt;

async fn answer(peer: &mut Peer, tag: &str, command: &str) -> (String, String) {
    let lines = peer.command(tag, command).await;
    let data = lines
        .iter()
        .find(|l| l.starts_with("* SORT") || l.starts_with("* THREAD"))
        .cloned()
        .unwrap_or_default();
    (
        data.trim_end().to_owned(),
        last(&lines).trim_end().to_owned(),
    )
}

#[tokio::test]
async fn sort_and_thread_order_a_folder_as_rfc_5256_says() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mails = [
        "From: Zed <a@example.org>\r\nDate: Fri, 22 Feb 2008 03:00:00 +0000\r\nMessage-ID: <1@x>\r\nSubject: plans\r\n\r\n1\r\n",
        "From: b@example.org\r\nDate: Fri, 22 Feb 2008 01:00:00 +0000\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nSubject: Re: plans\r\n\r\n2\r\n",
        "From: Amy <c@example.org>\r\nDate: Fri, 22 Feb 2008 02:00:00 +0000\r\nMessage-ID: <3@x>\r\nSubject: [list] Fwd: another\r\n\r\n3\r\n",
        "From: d@example.org\r\nDate: Fri, 22 Feb 2008 04:00:00 +0000\r\nMessage-ID: <4@x>\r\nReferences: <1@x> <2@x>\r\nSubject: Re: Re: plans\r\n\r\n4 with a longer body\r\n",
    ];
    for mail in mails {
        deliver(&h, &alice, "INBOX", mail, vec![]).await;
    }
    let mut peer = logged_in(address, alice.as_str()).await;
    let capabilities = peer.command("c", "CAPABILITY").await.join("");
    for capability in [
        "SORT",
        "SORT=DISPLAY",
        "THREAD=REFERENCES",
        "THREAD=ORDEREDSUBJECT",
    ] {
        assert!(capabilities.contains(capability), "{capabilities}");
    }
    let refused = answer(&mut peer, "n", "SORT (DATE) UTF-8 ALL").await;
    assert!(refused.1.starts_with("n BAD"), "{refused:?}");
    peer.command("s", "SELECT INBOX").await;
    for (command, expected) in [
        ("SORT (DATE) UTF-8 ALL", "* SORT 2 3 1 4"),
        ("SORT (REVERSE DATE) US-ASCII ALL", "* SORT 4 1 3 2"),
        // Base subjects: another, plans, plans, plans; ties by number.
        ("SORT (SUBJECT) UTF-8 ALL", "* SORT 3 1 2 4"),
        ("SORT (SUBJECT REVERSE SIZE) UTF-8 ALL", "* SORT 3 4 2 1"),
        ("SORT (FROM) UTF-8 ALL", "* SORT 1 2 3 4"),
        ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 3 2 4 1"),
        ("SORT (ARRIVAL) UTF-8 SUBJECT plans", "* SORT 1 2 4"),
        ("UID SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT 4 3 2 1"),
        ("THREAD REFERENCES UTF-8 ALL", "* THREAD (3)(1 2 4)"),
        ("THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (2 (1)(4))(3)"),
        (
            "UID THREAD REFERENCES UTF-8 NOT SUBJECT another",
            "* THREAD (1 2 4)",
        ),
    ] {
        let (data, done) = answer(&mut peer, "t", command).await;
        assert_eq!(data, expected, "{command}");
        assert!(done.starts_with("t OK"), "{command}: {done}");
    }
    let refused = answer(&mut peer, "b", "SORT (DATE) KOI8-R ALL").await;
    assert_eq!(
        refused.1,
        "b NO [BADCHARSET (US-ASCII UTF-8)] Unknown charset"
    );
    let refused = answer(&mut peer, "b2", "THREAD REFERENCES KOI8-R ALL").await;
    assert!(refused.1.starts_with("b2 NO [BADCHARSET"), "{refused:?}");
}

#[tokio::test]
async fn binary_fetches_decoded_parts_and_append_takes_a_literal8() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mail = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29y\r\nbGQ=\r\n\
        --b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak =3D x\r\n\
        --b\r\nContent-Transfer-Encoding: base64\r\n\r\nYQBi\r\n--b--\r\n";
    deliver(&h, &alice, "INBOX", mail, vec![]).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    peer.command("s", "SELECT INBOX").await;
    let lines = peer
        .command(
            "f",
            "FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.PEEK[2]<4.5>)",
        )
        .await;
    let all = lines.join("");
    assert!(
        all.contains("BINARY.SIZE[1] 11 BINARY[1] {11}\r\nhello world BINARY[2]<4> {5}\r\nbreak"),
        "{all}"
    );
    assert!(last(&lines).starts_with("f OK"), "{lines:?}");
    // A NUL is carried in a literal8; the message was not marked read by the PEEKs.
    let lines = peer
        .command("g", "FETCH 1 (BINARY[3] FLAGS)")
        .await
        .join("");
    assert!(lines.contains("BINARY[3] ~{3}\r\na\0b"), "{lines:?}");
    assert!(
        lines.contains("\\Seen"),
        "BINARY without PEEK marks it read: {lines:?}"
    );
    // APPEND of a literal8 (binary content, RFC 3516 §4.3), then read back as stored.
    peer.writer
        .write_all(b"a APPEND INBOX ~{18}\r\n")
        .await
        .unwrap();
    assert!(peer.line().await.starts_with('+'));
    peer.writer
        .write_all(b"Subject: x\r\n\r\n\0\x01\r\n\r\n")
        .await
        .unwrap();
    let mut appended = peer.line().await;
    while appended.starts_with('*') {
        appended = peer.line().await;
    }
    assert!(appended.starts_with("a OK"), "{appended}");
    let stored = peer
        .command("r", "FETCH 2 (BINARY.SIZE[1] RFC822.SIZE)")
        .await;
    assert_eq!(stored[0], "* 2 FETCH (RFC822.SIZE 18 BINARY.SIZE[1] 4)\r\n");
}

/// Sends `tag` `command` whose `{n}` literals follow each invitation; the lines up to the tagged
/// answer, or up to the first refusal instead of an invitation.
async fn with_literals(peer: &mut Peer, tag: &str, parts: &[&[u8]]) -> Vec<String> {
    let mut lines = Vec::new();
    for (at, part) in parts.iter().enumerate() {
        peer.writer.write_all(part).await.unwrap();
        if at + 1 == parts.len() {
            break;
        }
        let line = peer.line().await;
        let invited = line.starts_with('+');
        lines.push(line);
        if !invited {
            return lines;
        }
    }
    loop {
        let line = peer.line().await;
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[tokio::test]
async fn multiappend_stores_every_message_or_none() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let settings = pushmail_imap::ImapSettings {
        max_message_bytes: 200_000,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    let capabilities = peer.command("c", "CAPABILITY").await.join("");
    assert!(capabilities.contains("MULTIAPPEND"), "{capabilities}");

    let lines = with_literals(
        &mut peer,
        "a1",
        &[
            b"a1 APPEND Drafts (\\Draft) {19}\r\n",
            b"Subject: one\r\n\r\n1\r\n \"01-Jan-2020 10:00:00 +0000\" {19}\r\n",
            b"Subject: two\r\n\r\n2\r\n ($Work \\Seen) {21}\r\n",
            b"Subject: three\r\n\r\n3\r\n\r\n",
        ],
    )
    .await;
    let done = last(&lines);
    assert!(done.starts_with("a1 OK [APPENDUID "), "{lines:?}");
    assert!(done.contains(" 1:3] "), "{done}");
    peer.command("s", "SELECT Drafts").await;
    let fetched = peer
        .command(
            "f",
            "FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        )
        .await
        .join("");
    let order: Vec<usize> = ["one", "two", "three"]
        .iter()
        .map(|s| fetched.find(&format!("Subject: {s}")).unwrap())
        .collect();
    assert!(order.is_sorted(), "{fetched}");
    assert!(fetched.contains("01-Jan-2020 10:00:00 +0000"), "{fetched}");
    assert!(
        fetched.contains("$Work") && fetched.contains("\\Draft"),
        "{fetched}"
    );

    // One bad message (too many flags): none is stored.
    let flags: Vec<String> = (0..200).map(|n| format!("k{n}")).collect();
    let bad = format!(" ({}) {{20}}\r\n", flags.join(" "));
    let lines = with_literals(
        &mut peer,
        "a2",
        &[
            b"a2 APPEND Drafts {20}\r\n",
            format!("Subject: four\r\n\r\n4\r\n{bad}").as_bytes(),
            b"Subject: five\r\n\r\n5\r\n\r\n",
        ],
    )
    .await;
    assert!(last(&lines).starts_with("a2 NO [LIMIT]"), "{lines:?}");
    // More messages than one APPEND may hold.
    let mut many = b"a3 APPEND Drafts".to_vec();
    for n in 0..41 {
        many.extend_from_slice(
            format!(" {{+}}\r\nSubject: {n:02}\r\n\r\nx\r\n")
                .replace("{+}", "{18+}")
                .as_bytes(),
        );
    }
    many.extend_from_slice(b"\r\n");
    let lines = with_literals(&mut peer, "a3", &[&many]).await;
    assert!(last(&lines).starts_with("a3 NO [LIMIT]"), "{lines:?}");
    // Five thousand (what fits the bound on a command's bytes besides its literals): read no
    // further than one past the limit.
    let mut many = b"a5 APPEND Drafts".to_vec();
    for _ in 0..5_000 {
        many.extend_from_slice(b" {1+}\r\nx");
    }
    many.extend_from_slice(b"\r\n");
    let lines = with_literals(&mut peer, "a5", &[&many]).await;
    assert!(last(&lines).starts_with("a5 NO [LIMIT]"), "{lines:?}");
    // Into no folder.
    let lines = with_literals(
        &mut peer,
        "a4",
        &[
            b"a4 APPEND Nowhere {19}\r\n",
            b"Subject: one\r\n\r\n1\r\n {19}\r\n",
            b"Subject: two\r\n\r\n2\r\n\r\n",
        ],
    )
    .await;
    assert!(last(&lines).starts_with("a4 NO [TRYCREATE]"), "{lines:?}");
    let status = peer
        .command("st", "STATUS Drafts (MESSAGES)")
        .await
        .join("");
    assert!(status.contains("MESSAGES 3"), "{status}");

    // The literals of one APPEND share the message bound: 2 × 90 KB fit in 200 KB, 2 × 150 KB
    // do not, and the second is never invited.
    let body = |n: usize| {
        let mut message = format!("Subject: big {n}\r\n\r\n").into_bytes();
        message.resize(n * 1000, b'x');
        message
    };
    let (first, second) = (body(90), body(90));
    let lines = with_literals(
        &mut peer,
        "b1",
        &[
            b"b1 APPEND Drafts {90000}\r\n",
            &[first.as_slice(), b" {90000}\r\n"].concat(),
            &[second.as_slice(), b"\r\n"].concat(),
        ],
    )
    .await;
    assert!(last(&lines).starts_with("b1 OK"), "{lines:?}");
    let first = body(150);
    let lines = with_literals(
        &mut peer,
        "b2",
        &[
            b"b2 APPEND Drafts {150000}\r\n",
            &[first.as_slice(), b" {150000}\r\n"].concat(),
        ],
    )
    .await;
    assert!(last(&lines).starts_with("b2 BAD"), "{lines:?}");
    let status = peer
        .command("st2", "STATUS Drafts (MESSAGES)")
        .await
        .join("");
    assert!(status.contains("MESSAGES 5"), "{status}");
}
