//! NOTIFY (RFC 5465) over real TCP: one session watching the INBOX and other folders is told of
//! new, removed and re-flagged mail there as `* STATUS`, and of folders created, (un)subscribed
//! and deleted as `* LIST`, while it waits for its next command (no IDLE, no NOOP); the initial
//! STATUS; MessageNew's FETCH items for the selected folder; pipelined commands still read at
//! once; NOTIFY NONE; and the refusals.

use std::time::Duration;

use pushmail_tests::Harness;
use pushmail_tests::imap::{
    Peer, deliver, last, listener, logged_in, loopback_plaintext, ok, until,
};
use tokio::io::AsyncWriteExt;

/// The next line, which must come unasked within 5 s.
async fn told(peer: &mut Peer) -> String {
    tokio::time::timeout(Duration::from_secs(5), peer.line())
        .await
        .expect("told within 5 s")
        .trim_end()
        .to_owned()
}

#[tokio::test]
async fn a_watching_session_is_told_what_happens_in_its_folders() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    deliver(&h, &alice, "INBOX", "Subject: 1\r\n\r\n1\r\n", vec![]).await;
    let (address, hints) = listener(&h, loopback_plaintext()).await;
    let (mut early, _) = Peer::connect(address).await;
    let refused = early.command("n0", "NOTIFY NONE").await;
    assert!(last(&refused).starts_with("n0 BAD"), "{refused:?}");

    let mut desk = logged_in(address, alice.as_str()).await;
    ok(&mut desk, "c", "CREATE Lists").await;
    let mut phone = logged_in(address, alice.as_str()).await;
    let capabilities = phone.command("c", "CAPABILITY").await.join("");
    assert!(capabilities.contains(" NOTIFY"), "{capabilities}");
    let lines = ok(
        &mut phone,
        "n1",
        "NOTIFY SET STATUS (INBOXES (MessageNew MessageExpunge)) (MAILBOXES Lists (FlagChange)) (PERSONAL (MailboxName SubscriptionChange))",
    )
    .await;
    let status: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("* STATUS"))
        .map(|l| l.trim_end())
        .collect();
    assert_eq!(status.len(), 2, "{lines:?}");
    assert!(
        status[0].starts_with("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "{status:?}"
    );
    assert!(
        status[1].starts_with("* STATUS Lists (UIDVALIDITY ")
            && status[1].contains("HIGHESTMODSEQ"),
        "{status:?}"
    );

    // New mail, no command in progress: told at once (a hint) or at the next look.
    deliver(&h, &alice, "INBOX", "Subject: 2\r\n\r\n2\r\n", vec![]).await;
    hints.changed(&alice);
    let line = told(&mut phone).await;
    assert!(
        line.starts_with("* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY "),
        "{line}"
    );
    // Another client's changes: a flag in Lists, folders made, subscribed and deleted.
    deliver(&h, &alice, "Lists", "Subject: l\r\n\r\nl\r\n", vec![]).await;
    ok(&mut desk, "s", "SELECT Lists").await;
    ok(&mut desk, "f", "STORE 1 +FLAGS (\\Flagged)").await;
    let line = told(&mut phone).await;
    assert!(
        line.starts_with("* STATUS Lists (UIDVALIDITY ") && line.contains("HIGHESTMODSEQ"),
        "{line}"
    );
    ok(&mut desk, "c2", "CREATE Projects").await;
    assert_eq!(told(&mut phone).await, "* LIST () \"/\" Projects");
    ok(&mut desk, "s2", "SUBSCRIBE Projects").await;
    assert_eq!(
        told(&mut phone).await,
        "* LIST (\\Subscribed) \"/\" Projects"
    );
    ok(&mut desk, "d", "DELETE Projects").await;
    assert_eq!(
        told(&mut phone).await,
        "* LIST (\\NonExistent) \"/\" Projects"
    );

    // Pipelined commands while watching are read at once, both.
    phone
        .writer
        .write_all(b"p1 NOOP\r\np2 NOOP\r\n")
        .await
        .unwrap();
    until(&mut phone, "p1 OK").await;
    until(&mut phone, "p2 OK").await;

    // The selected folder with MessageNew's FETCH items: EXISTS, then the items.
    ok(&mut phone, "s3", "SELECT INBOX").await;
    ok(
        &mut phone,
        "n2",
        "NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge)) (PERSONAL (MessageNew))",
    )
    .await;
    phone.writer.write_all(b"i IDLE\r\n").await.unwrap();
    assert!(phone.line().await.starts_with('+'));
    deliver(&h, &alice, "INBOX", "Subject: three\r\n\r\n3\r\n", vec![]).await;
    hints.changed(&alice);
    until(&mut phone, "* 3 EXISTS").await;
    until(&mut phone, "UID 3 BODY[HEADER.FIELDS (SUBJECT)]").await;
    until(&mut phone, "Subject: three").await;
    phone.writer.write_all(b"DONE\r\n").await.unwrap();
    until(&mut phone, "i OK").await;

    // NOTIFY NONE: nothing more told of other folders.
    ok(&mut phone, "n3", "NOTIFY NONE").await;
    deliver(&h, &alice, "Lists", "Subject: quiet\r\n\r\nq\r\n", vec![]).await;
    hints.changed(&alice);
    let lines = ok(&mut phone, "q", "NOOP").await;
    assert!(!lines.iter().any(|l| l.contains("STATUS")), "{lines:?}");

    for (tag, bad, answer) in [
        (
            "b1",
            "NOTIFY SET (PERSONAL (MessageNew AnnotationChange))",
            "b1 NO [BADEVENT (",
        ),
        ("b2", "NOTIFY SET (PERSONAL (MessageNew (UID)))", "b2 BAD"),
        ("b3", "NOTIFY SET", "b3 BAD"),
        ("b4", "NOTIFY SET (ELSEWHERE (MessageNew))", "b4 BAD"),
    ] {
        let lines = phone.command(tag, bad).await;
        assert!(last(&lines).starts_with(answer), "{bad}: {lines:?}");
    }
}
