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
