//! The IMAP listener over real TCP (and TLS): LOGIN only after STARTTLS unless loopback
//! plaintext is allowed, LIST with SPECIAL-USE, SELECT, FETCH by number and by UID. IDLE:
//! `imap_idle.rs`.

use std::time::Duration;

use pushmail_imap::{Imap, ImapSettings};
use pushmail_tests::imap::{Peer, deliver, last, listener, loopback_plaintext};
use pushmail_tests::smtp::test_tls;
use pushmail_tests::{Harness, PASSWORD};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test]
async fn login_list_select_fetch() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    for subject in ["one", "two"] {
        let raw = format!("From: bob@example.org\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n");
        deliver(&h, &alice, "INBOX", raw.into_bytes(), vec!["\\Seen".into()]).await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let (mut peer, greeting) = Peer::connect(address).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let bad = peer.command("a0", "SELECT INBOX").await;
    assert!(last(&bad).starts_with("a0 BAD"), "{bad:?}");
    // NOOP, like CAPABILITY and LOGOUT, is valid in every state.
    let noop = peer.command("a00", "NOOP").await;
    assert!(last(&noop).starts_with("a00 OK"), "{noop:?}");
    let wrong = peer
        .command("a1", &format!("LOGIN {alice} wrong-password"))
        .await;
    assert!(last(&wrong).starts_with("a1 NO"), "{wrong:?}");
    let login = peer
        .command("a2", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    assert!(last(&login).starts_with("a2 OK"), "{login:?}");
    assert!(last(&login).contains("IDLE"), "{login:?}");

    let list = peer.command("a3", "LIST \"\" \"*\"").await;
    let joined = list.join("");
    for expected in [
        "(\\HasNoChildren) \"/\" INBOX",
        "(\\HasNoChildren \\Sent) \"/\" Sent",
        "(\\HasNoChildren \\Trash) \"/\" Trash",
        "(\\HasNoChildren \\Drafts) \"/\" Drafts",
        "(\\HasNoChildren \\Junk) \"/\" Junk",
    ] {
        assert!(joined.contains(expected), "{expected} in {joined}");
    }
    let select = peer.command("a4", "SELECT INBOX").await;
    let joined = select.join("");
    assert!(
        joined.contains("* 2 EXISTS")
            && joined.contains("[UIDVALIDITY ")
            && joined.contains("[UIDNEXT 3]"),
        "{joined}"
    );
    assert!(
        last(&select).starts_with("a4 OK [READ-WRITE]"),
        "{select:?}"
    );
    let fetch = peer
        .command("a5", "FETCH 1:* (UID FLAGS RFC822.SIZE)")
        .await;
    assert_eq!(fetch.len(), 3, "{fetch:?}");
    // INTERNALDATE in IMAP's own form (whole seconds), though the store keeps milliseconds.
    let dated = peer.command("a5d", "FETCH 1 (INTERNALDATE)").await;
    assert!(
        dated[0].starts_with("* 1 FETCH (INTERNALDATE \""),
        "{dated:?}"
    );
    assert!(last(&dated).starts_with("a5d OK"), "{dated:?}");
    assert!(
        fetch[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE "),
        "{fetch:?}"
    );
    // BODY[] by UID: the message as stored, in a literal.
    peer.writer
        .write_all(b"a6 UID FETCH 2 (BODY.PEEK[])\r\n")
        .await
        .unwrap();
    let head = peer.line().await;
    assert!(head.starts_with("* 2 FETCH (UID 2 BODY[] {"), "{head}");
    let mut rest = String::new();
    loop {
        let line = peer.line().await;
        let done = line.starts_with("a6 ");
        rest.push_str(&line);
        if done {
            break;
        }
    }
    assert!(
        rest.contains("Subject: two") && rest.contains("body two"),
        "{rest}"
    );
    assert!(rest.contains("a6 OK"), "{rest}");
    let missing = peer.command("a7", "SELECT Nowhere").await;
    assert!(last(&missing).starts_with("a7 NO"), "{missing:?}");
    let logout = peer.command("a8", "LOGOUT").await;
    assert!(logout[0].starts_with("* BYE"), "{logout:?}");
}

#[tokio::test]
async fn login_waits_for_starttls_and_pipelined_commands_are_dropped() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (acceptor, connector) = test_tls();
    let hints = pushmail_core::hints::ChangeHints::new();
    let imap = Imap::new(h.store.clone(), ImapSettings::default(), hints).with_tls(acceptor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(pushmail_listener::serve(
        listener,
        std::sync::Arc::new(imap),
        pushmail_listener::Limits::default(),
        std::future::pending(),
    ));
    let (mut peer, greeting) = Peer::connect(address).await;
    assert!(
        greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"),
        "{greeting}"
    );
    let refused = peer
        .command("b1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    assert!(last(&refused).starts_with("b1 NO"), "{refused:?}");
    // STARTTLS with a LOGIN pipelined behind it in the clear: never executed.
    peer.writer
        .write_all(format!("b2 STARTTLS\r\nb3 LOGIN {alice} \"{PASSWORD}\"\r\n").as_bytes())
        .await
        .unwrap();
    assert!(peer.line().await.starts_with("b2 OK"));
    let stream = peer.reader.into_inner().reunite(peer.writer).unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, stream).await.unwrap();
    let (reader, mut writer) = tokio::io::split(tls);
    let mut reader = BufReader::new(reader);
    writer.write_all(b"b4 CAPABILITY\r\n").await.unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(
        line.starts_with("* CAPABILITY") && !line.contains("LOGINDISABLED"),
        "the pipelined LOGIN was answered: {line}"
    );
    line.clear();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("b4 OK"), "{line}");
    writer
        .write_all(format!("b5 LOGIN {alice} \"{PASSWORD}\"\r\n").as_bytes())
        .await
        .unwrap();
    line.clear();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("b5 OK"), "{line}");
}

#[tokio::test]
async fn integrated_accounts_see_sent_items_and_deleted_items_and_status_counts() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    assert_eq!(
        h.post(&h.subscribe_body(&alice, "r-1", 1)).await.status,
        200
    );
    deliver(
        &h,
        &alice,
        "Sent",
        b"Subject: sent one\r\n\r\nx\r\n".to_vec(),
        vec!["\\Seen".into()],
    )
    .await;
    let (address, _) = listener(&h, loopback_plaintext()).await;

    let (mut peer, _) = Peer::connect(address).await;
    peer.command("d1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    let list = peer.command("d2", "LIST \"\" \"*\"").await.join("");
    assert!(list.contains("\\Sent) \"/\" \"Sent Items\""), "{list}");
    assert!(list.contains("\\Trash) \"/\" \"Deleted Items\""), "{list}");
    assert!(
        list.contains("\\Sent) \"/\" Sent\r"),
        "the real folder is listed too: {list}"
    );
    let select = peer.command("d3", "SELECT \"Sent Items\"").await.join("");
    assert!(select.contains("* 1 EXISTS"), "{select}");
    let status = peer
        .command(
            "d4",
            "STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)",
        )
        .await;
    // The activation mail is in INBOX, unread.
    assert!(
        status[0].starts_with("* STATUS INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 2 UIDVALIDITY "),
        "{status:?}"
    );
    let status = peer
        .command("d5", "STATUS \"Deleted Items\" (MESSAGES)")
        .await;
    assert!(status[0].contains("(MESSAGES 0)"), "{status:?}");

    // Not integrated: no aliases.
    let (mut other, _) = Peer::connect(address).await;
    other
        .command("e1", &format!("LOGIN {bob} \"{PASSWORD}\""))
        .await;
    let list = other.command("e2", "LIST \"\" \"*\"").await.join("");
    assert!(
        !list.contains("Sent Items") && list.contains("Sent"),
        "{list}"
    );
    let missing = other.command("e3", "SELECT \"Sent Items\"").await;
    assert!(last(&missing).starts_with("e3 NO"), "{missing:?}");
}

#[tokio::test]
async fn literals_namespace_and_enable() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let (mut peer, greeting) = Peer::connect(address).await;
    assert!(greeting.contains("LITERAL+"), "{greeting}");
    // A literal beyond the bound: refused at once, no continuation, nothing read as a command.
    peer.writer
        .write_all(b"f0 LOGIN {100000}\r\n")
        .await
        .unwrap();
    let refused = peer.line().await;
    assert!(refused.starts_with("f0 BAD"), "{refused}");
    // A synchronising literal: the server invites it.
    let login = alice.as_str();
    peer.writer
        .write_all(format!("f1 LOGIN {{{}}}\r\n", login.len()).as_bytes())
        .await
        .unwrap();
    assert!(peer.line().await.starts_with("+ "));
    // The password as a non-synchronising one (LITERAL+): no invitation.
    peer.writer
        .write_all(format!("{login} {{{}+}}\r\n{PASSWORD}\r\n", PASSWORD.len()).as_bytes())
        .await
        .unwrap();
    let logged_in = peer.line().await;
    assert!(logged_in.starts_with("f1 OK"), "{logged_in}");
    let namespace = peer.command("f2", "NAMESPACE").await;
    assert_eq!(namespace[0], "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    let enable = peer.command("f3", "ENABLE CONDSTORE").await;
    assert!(
        enable[0].starts_with("* ENABLED") && last(&enable).starts_with("f3 OK"),
        "{enable:?}"
    );
}

#[tokio::test]
async fn closing_tells_idlers_and_waiting_sessions_bye() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let hints = pushmail_core::hints::ChangeHints::new();
    let imap = std::sync::Arc::new(Imap::new(h.store.clone(), loopback_plaintext(), hints));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let closing = imap.clone();
    let served = tokio::spawn(pushmail_listener::serve(
        listener,
        imap,
        pushmail_listener::Limits::default(),
        async move {
            let _ = stopped.await;
            closing.close();
        },
    ));
    let (mut idler, _) = Peer::connect(address).await;
    idler
        .command("g1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    idler.command("g2", "SELECT INBOX").await;
    idler.writer.write_all(b"g3 IDLE\r\n").await.unwrap();
    assert!(idler.line().await.starts_with("+ "));
    let (mut waiting, _) = Peer::connect(address).await;
    stop.send(()).unwrap();
    assert!(idler.line().await.starts_with("* BYE"), "the idler is told");
    assert!(
        waiting.line().await.starts_with("* BYE"),
        "a session between commands is told"
    );
    // Every session ended: the listener stops well before its 30 s grace.
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stopped")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn authenticate_plain_with_and_without_an_initial_response() {
    use base64::Engine;
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let plain = |password: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("\0{alice}\0{password}"))
    };
    let (mut peer, greeting) = Peer::connect(address).await;
    assert!(
        greeting.contains("AUTH=PLAIN") && greeting.contains("SASL-IR"),
        "{greeting}"
    );
    let wrong = peer
        .command("h1", &format!("AUTHENTICATE PLAIN {}", plain("wrong")))
        .await;
    assert!(last(&wrong).starts_with("h1 NO"), "{wrong:?}");
    // Cancelled half-way.
    peer.writer
        .write_all(b"h2 AUTHENTICATE PLAIN\r\n")
        .await
        .unwrap();
    assert!(peer.line().await.starts_with("+"));
    peer.writer.write_all(b"*\r\n").await.unwrap();
    assert!(peer.line().await.starts_with("h2 BAD"));
    // The response on a line of its own.
    peer.writer
        .write_all(b"h3 AUTHENTICATE PLAIN\r\n")
        .await
        .unwrap();
    assert!(peer.line().await.starts_with("+"));
    peer.writer
        .write_all(format!("{}\r\n", plain(PASSWORD)).as_bytes())
        .await
        .unwrap();
    let ok = peer.line().await;
    assert!(ok.starts_with("h3 OK"), "{ok}");
    // With SASL-IR, on a second connection.
    let (mut second, _) = Peer::connect(address).await;
    let ok = second
        .command("i1", &format!("AUTHENTICATE PLAIN {}", plain(PASSWORD)))
        .await;
    assert!(last(&ok).starts_with("i1 OK"), "{ok:?}");
}

#[tokio::test]
async fn store_changes_flags_and_reading_a_body_marks_it_seen() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    for subject in ["one", "two"] {
        deliver(
            &h,
            &alice,
            "INBOX",
            format!("Subject: {subject}\r\n\r\nx\r\n").into_bytes(),
            vec![],
        )
        .await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let (mut peer, _) = Peer::connect(address).await;
    peer.command("j1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    peer.command("j2", "EXAMINE INBOX").await;
    let refused = peer.command("j3", "STORE 1 +FLAGS (\\Flagged)").await;
    assert!(last(&refused).starts_with("j3 NO"), "{refused:?}");
    peer.command("j4", "SELECT INBOX").await;
    let stored = peer
        .command("j5", "STORE 1:2 +FLAGS (\\Flagged $Work)")
        .await;
    // The new keyword is told first (RFC 3501 §7.2.6), then the FETCHes.
    assert!(
        stored[0].starts_with("* FLAGS (") && stored[0].contains("$Work"),
        "{stored:?}"
    );
    assert!(
        stored[1].starts_with("* OK [PERMANENTFLAGS (") && stored[1].contains("$Work"),
        "{stored:?}"
    );
    assert_eq!(
        stored[2], "* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))\r\n",
        "{stored:?}"
    );
    assert_eq!(stored.len(), 5, "{stored:?}");
    let silent = peer
        .command("j6", "UID STORE 2 -FLAGS.SILENT ($Work)")
        .await;
    assert_eq!(silent.len(), 1, "{silent:?}");
    let replaced = peer.command("j7", "UID STORE 1 FLAGS (\\Answered)").await;
    assert_eq!(
        replaced[0], "* 1 FETCH (FLAGS (\\Answered \\Recent) UID 1)\r\n",
        "{replaced:?}"
    );
    // PEEK leaves it unread; BODY[] marks it read.
    let peek = peer.command("j8", "FETCH 2 (BODY.PEEK[])").await.join("");
    assert!(!peek.contains("\\Seen"), "{peek}");
    let read = peer.command("j9", "FETCH 2 (BODY[])").await.join("");
    assert!(read.contains("FLAGS (\\Flagged \\Seen \\Recent)"), "{read}");
    let flags = peer.command("j10", "FETCH 1:2 (FLAGS)").await;
    assert_eq!(flags[0], "* 1 FETCH (FLAGS (\\Answered \\Recent))\r\n");
    assert_eq!(
        flags[1],
        "* 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"
    );
}

#[tokio::test]
async fn search_by_flags_envelope_and_sets() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    for (subject, flags) in [
        ("lunch plans", vec!["\\Seen"]),
        ("Invoice 42", vec![]),
        ("LUNCH again", vec!["\\Flagged"]),
    ] {
        deliver(
            &h,
            &alice,
            "INBOX",
            format!("From: Bob <bob@example.org>\r\nSubject: {subject}\r\n\r\nx\r\n").into_bytes(),
            flags.into_iter().map(str::to_owned).collect(),
        )
        .await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let (mut peer, _) = Peer::connect(address).await;
    peer.command("k1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    peer.command("k2", "SELECT INBOX").await;
    let cases = [
        ("SEARCH ALL", "* SEARCH 1 2 3"),
        ("SEARCH UNSEEN", "* SEARCH 2 3"),
        ("SEARCH SUBJECT lunch", "* SEARCH 1 3"),
        ("SEARCH OR FLAGGED SEEN", "* SEARCH 1 3"),
        ("SEARCH NOT SUBJECT lunch FROM bob", "* SEARCH 2"),
        ("UID SEARCH 2:* UNSEEN", "* SEARCH 2 3"),
        ("SEARCH UID 1,3", "* SEARCH 1 3"),
        ("SEARCH SUBJECT nothing", "* SEARCH"),
        // From the message text: BODY only in the body, TEXT in header and body too.
        ("SEARCH BODY lunch", "* SEARCH"),
        ("SEARCH BODY X", "* SEARCH 1 2 3"),
        ("SEARCH TEXT LUNCH", "* SEARCH 1 3"),
        ("SEARCH HEADER from BOB@example", "* SEARCH 1 2 3"),
        ("SEARCH HEADER X-Missing \"\"", "* SEARCH"),
    ];
    for (i, (command, expected)) in cases.iter().enumerate() {
        let answer = peer.command(&format!("s{i}"), command).await;
        assert_eq!(answer[0].trim_end(), *expected, "{command}: {answer:?}");
        assert!(last(&answer).contains("OK"), "{answer:?}");
    }
    // CONDSTORE: MODSEQ keys, with the highest MODSEQ found; the first command to use it in a
    // selected folder is told the folder's HIGHESTMODSEQ (RFC 7162 §3.1).
    let answer = peer.command("k3", "SEARCH MODSEQ 1").await;
    assert!(
        answer[0].starts_with("* OK [HIGHESTMODSEQ ")
            && answer[1].starts_with("* SEARCH 1 2 3 (MODSEQ "),
        "{answer:?}"
    );
    // ESEARCH (RFC 4731): one line with what RETURN asked for.
    let answer = peer
        .command("k4", "UID SEARCH RETURN (MIN MAX COUNT) ALL")
        .await;
    assert_eq!(
        answer[0], "* ESEARCH (TAG \"k4\") UID MIN 1 MAX 3 COUNT 3\r\n",
        "{answer:?}"
    );
    let answer = peer.command("k5", "SEARCH RETURN () MODSEQ 1").await;
    assert!(
        answer[0].starts_with("* ESEARCH (TAG \"k5\") ALL 1:3 MODSEQ "),
        "{answer:?}"
    );
    let answer = peer.command("k6", "SEARCH RETURN (SAVE) ALL").await;
    assert!(
        last(&answer).starts_with("k6 BAD"),
        "an option this server lacks: {answer:?}"
    );
}

#[tokio::test]
async fn search_matches_address_fields_as_written_and_the_sent_date_in_its_own_zone() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let raw = "From: \"Real Name\" <someone@example.org> (a comment)\r\n\
               To: friends: carol@example.org;\r\n\
               Date: Mon, 1 Jan 2024 23:30:00 -0500\r\nSubject: s\r\n\r\nx\r\n";
    deliver(&h, &alice, "INBOX", raw, vec![]).await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = pushmail_tests::imap::logged_in(address, alice.as_str()).await;
    peer.command("s", "SELECT INBOX").await;
    for (criteria, hit) in [
        ("FROM \"Real Name\"", true),
        ("FROM comment", true),
        ("FROM someone@example.org", true),
        ("TO friends", true),
        ("FROM nobody", false),
        // 23:30 at -0500 is 2 January in UTC: the Date: field's own day counts.
        ("SENTON 1-Jan-2024", true),
        ("SENTON 2-Jan-2024", false),
        ("SENTBEFORE 2-Jan-2024", true),
        ("SENTSINCE 2-Jan-2024", false),
    ] {
        let found = peer.command("q", &format!("SEARCH {criteria}")).await;
        assert_eq!(
            found[0].trim_end() == "* SEARCH 1",
            hit,
            "{criteria}: {found:?}"
        );
    }
}
