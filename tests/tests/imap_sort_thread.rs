//! SORT (RFC 5256, with SORT=DISPLAY) and THREAD (ORDEREDSUBJECT, REFERENCES) over real TCP:
//! the orders and trees of a small folder, by number and by UID, with search criteria, and
//! the refusals (an unknown charset, no folder selected).

use pushmail_tests::Harness;
use pushmail_tests::imap::{Peer, deliver, last, listener, logged_in, loopback_plaintext};

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
