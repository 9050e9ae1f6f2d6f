//! IMAP commands that change mailboxes, over real TCP: CREATE/DELETE/RENAME/SUBSCRIBE with
//! their refusals, APPEND/COPY/MOVE/EXPUNGE with UIDPLUS, other sessions' changes reaching a
//! selected or idling session, and the bounds on literals before and after login.

use std::time::Duration;

use pushmail_core::folder::FolderName;
use pushmail_imap::ImapSettings;
use pushmail_store::AccountUpdate;
use pushmail_tests::imap::{Peer, last, listener, logged_in, loopback_plaintext};
use pushmail_tests::{Harness, PASSWORD};
use tokio::io::AsyncWriteExt;

async fn folder_names(h: &Harness, account: &pushmail_core::types::Address) -> Vec<String> {
    let mut names: Vec<String> = h
        .store
        .folders(account)
        .await
        .unwrap()
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    names.sort();
    names
}

/// `APPEND <folder> (<flags>) {n}` with the message as a synchronising literal.
async fn append(
    peer: &mut Peer,
    tag: &str,
    folder: &str,
    flags: &str,
    message: &str,
) -> Vec<String> {
    let line = format!("{tag} APPEND {folder} ({flags}) {{{}}}\r\n", message.len());
    peer.writer.write_all(line.as_bytes()).await.unwrap();
    let go = peer.line().await;
    if !go.starts_with('+') {
        return vec![go];
    }
    peer.writer
        .write_all(format!("{message}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let line = peer.line().await;
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn mail(subject: &str) -> String {
    format!("From: bob@example.org\r\nSubject: {subject}\r\n\r\nHello {subject}\r\n")
}

/// A listener, alice logged in with three messages appended to INBOX, and INBOX selected.
async fn inbox_of_three() -> (
    Harness,
    std::net::SocketAddr,
    pushmail_core::types::Address,
    Peer,
) {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    for i in 0..3 {
        append(&mut peer, &format!("a{i}"), "INBOX", "", &mail("m")).await;
    }
    peer.command("s0", "SELECT INBOX").await;
    (h, address, alice, peer)
}

#[tokio::test]
async fn create_delete_rename_subscribe_and_their_refusals() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let settings = ImapSettings {
        max_folders: 8,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let mut peer = logged_in(address, alice.as_str()).await;

    let created = peer.command("c1", "CREATE Projects/2026/").await;
    assert!(last(&created).starts_with("c1 OK"), "{created:?}");
    // The superior level is created too.
    let list = peer.command("c2", "LIST \"\" \"Projects*\"").await.join("");
    assert!(list.contains("(\\HasChildren) \"/\" Projects\r"), "{list}");
    assert!(
        list.contains("(\\HasNoChildren) \"/\" Projects/2026\r"),
        "{list}"
    );
    // Modified UTF-7 on the wire, UTF-8 in the store.
    let created = peer.command("c3", "CREATE Entw&APw-rfe").await;
    assert!(last(&created).starts_with("c3 OK"), "{created:?}");
    assert!(
        folder_names(&h, &alice)
            .await
            .contains(&"Entwürfe".to_owned())
    );
    let list = peer.command("c4", "LIST \"\" Entw*").await.join("");
    assert!(list.contains("\"/\" Entw&APw-rfe\r"), "{list}");

    for (tag, command, refusal) in [
        ("r1", "CREATE Projects", "NO [ALREADYEXISTS]"),
        ("r2", "CREATE inbox", "NO [ALREADYEXISTS]"),
        ("r3", "CREATE \"a//b\"", "NO [CANNOT]"),
        ("r4", "CREATE Bad&Zm9v", "NO [CANNOT]"),
        ("r5", "DELETE INBOX", "NO [CANNOT]"),
        ("r6", "DELETE Sent", "NO [CANNOT]"),
        ("r7", "DELETE Nope", "NO [NONEXISTENT]"),
        ("r8", "RENAME Trash Bin", "NO [CANNOT]"),
        ("r9", "RENAME Projects Sent", "NO [ALREADYEXISTS]"),
        ("r10", "RENAME Projects Projects/2026/x", "NO [CANNOT]"),
        ("r11", "SUBSCRIBE Nope", "NO [NONEXISTENT]"),
        // Eight folders now: one more is over the limit.
        ("r12", "CREATE More", "NO [LIMIT]"),
    ] {
        let before = folder_names(&h, &alice).await;
        let answer = peer.command(tag, command).await;
        assert!(
            last(&answer).starts_with(&format!("{tag} {refusal}")),
            "{command}: {answer:?}"
        );
        assert_eq!(
            folder_names(&h, &alice).await,
            before,
            "{command} changed nothing"
        );
    }

    let renamed = peer.command("m1", "RENAME Projects Work").await;
    assert!(last(&renamed).starts_with("m1 OK"), "{renamed:?}");
    let names = folder_names(&h, &alice).await;
    assert!(names.contains(&"Work/2026".to_owned()) && !names.contains(&"Projects".to_owned()));

    let unsubscribed = peer.command("s1", "UNSUBSCRIBE Work").await;
    assert!(last(&unsubscribed).starts_with("s1 OK"));
    let lsub = peer.command("s2", "LSUB \"\" \"*\"").await.join("");
    assert!(
        !lsub.contains("\"/\" Work\r") && lsub.contains("\"/\" Work/2026\r"),
        "{lsub}"
    );
    assert!(lsub.contains("* LSUB () \"/\" INBOX"), "{lsub}");
    peer.command("s3", "SUBSCRIBE Work").await;
    let lsub = peer.command("s4", "LSUB \"\" \"*\"").await.join("");
    assert!(lsub.contains("\"/\" Work\r"), "{lsub}");

    let deleted = peer.command("d1", "DELETE Work/2026").await;
    assert!(last(&deleted).starts_with("d1 OK"), "{deleted:?}");
    assert!(
        !folder_names(&h, &alice)
            .await
            .contains(&"Work/2026".to_owned())
    );
}

#[tokio::test]
async fn append_copy_move_and_expunge_with_uidplus() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    peer.command("a0", "CREATE Archive").await;

    let inbox = h
        .store
        .folder(&alice, &FolderName::parse("INBOX").unwrap())
        .await
        .unwrap()
        .unwrap();
    for (i, flags) in ["\\Seen", "", "\\Flagged"].iter().enumerate() {
        let appended = append(
            &mut peer,
            &format!("a{}", i + 1),
            "INBOX",
            flags,
            &mail("m"),
        )
        .await;
        let expected = format!("OK [APPENDUID {} {}]", inbox.uid_validity, i + 1);
        assert!(last(&appended).contains(&expected), "{appended:?}");
    }
    let stored = h
        .store
        .messages(&alice, &FolderName::parse("INBOX").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].flags, ["\\Seen"]);
    let refused = append(&mut peer, "a4", "Nope", "", &mail("x")).await;
    assert!(
        last(&refused).starts_with("a4 NO [TRYCREATE]"),
        "{refused:?}"
    );

    // Over the quota: refused, nothing stored.
    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.quota_bytes = Some(h.store.mailbox_usage(&alice).await.unwrap() + 10);
    assert!(matches!(
        h.store.update_account(&account).await.unwrap(),
        AccountUpdate::Updated(_)
    ));
    let refused = append(&mut peer, "a5", "INBOX", "", &mail("too much")).await;
    assert!(
        last(&refused).starts_with("a5 NO [OVERQUOTA]"),
        "{refused:?}"
    );

    let select = peer.command("b1", "SELECT INBOX").await.join("");
    assert!(select.contains("* 3 EXISTS"), "{select}");
    let copied = peer.command("b2", "COPY 1:2 Archive").await;
    assert!(last(&copied).starts_with("b2 NO [OVERQUOTA]"), "{copied:?}");
    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.quota_bytes = None;
    h.store.update_account(&account).await.unwrap();
    let copied = peer.command("b3", "COPY 1:2 Archive").await;
    assert!(last(&copied).contains("[COPYUID "), "{copied:?}");
    assert!(last(&copied).contains(" 1:2 1:2]"), "{copied:?}");

    // MOVE: COPYUID first, then the EXPUNGE, then the tagged OK.
    let moved = peer.command("b4", "UID MOVE 3 Archive").await;
    assert!(
        moved[0].starts_with("* OK [COPYUID ") && moved[0].contains(" 3 3]"),
        "{moved:?}"
    );
    assert_eq!(moved[1], "* 3 EXPUNGE\r\n");
    assert!(last(&moved).starts_with("b4 OK"));

    // EXPUNGE removes what is \Deleted; UID EXPUNGE only within its set.
    peer.command("b5", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        .await;
    let expunged = peer.command("b6", "UID EXPUNGE 2").await;
    assert_eq!(expunged[0], "* 2 EXPUNGE\r\n", "{expunged:?}");
    let expunged = peer.command("b7", "EXPUNGE").await;
    assert_eq!(expunged[0], "* 1 EXPUNGE\r\n", "{expunged:?}");
    let inbox_left = h
        .store
        .messages(&alice, &FolderName::parse("INBOX").unwrap(), 0, 10)
        .await
        .unwrap();
    assert!(inbox_left.is_empty());
    let archive = h
        .store
        .messages(&alice, &FolderName::parse("Archive").unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(archive.len(), 3);

    // Read-only: no change through EXAMINE.
    peer.command("e1", "EXAMINE Archive").await;
    for (tag, command) in [
        ("e2", "EXPUNGE"),
        ("e3", "MOVE 1 INBOX"),
        ("e4", "STORE 1 +FLAGS (x)"),
    ] {
        let refused = peer.command(tag, command).await;
        assert!(
            last(&refused).starts_with(&format!("{tag} NO")),
            "{refused:?}"
        );
    }

    // At its quota, a COPY is refused but a MOVE (which adds nothing in the end) is not.
    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.quota_bytes = Some(h.store.mailbox_usage(&alice).await.unwrap());
    h.store.update_account(&account).await.unwrap();
    peer.command("q1", "SELECT Archive").await;
    let copied = peer.command("q2", "COPY 1 INBOX").await;
    assert!(last(&copied).starts_with("q2 NO [OVERQUOTA]"), "{copied:?}");
    let moved = peer.command("q3", "MOVE 1 INBOX").await;
    assert!(last(&moved).starts_with("q3 OK"), "{moved:?}");
}

#[tokio::test]
async fn other_sessions_flags_and_expunges_reach_a_selected_session() {
    let (_h, address, alice, mut writer) = inbox_of_three().await;
    let mut reader = logged_in(address, alice.as_str()).await;
    reader.command("r0", "SELECT INBOX").await;

    // An expunge elsewhere waits during FETCH by number, and comes with NOOP.
    writer
        .command("w1", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        .await;
    writer.command("w2", "EXPUNGE").await;
    let fetched = reader.command("r1", "FETCH 1:* (UID)").await;
    assert!(
        !fetched.iter().any(|l| l.contains("EXPUNGE")),
        "{fetched:?}"
    );
    let noop = reader.command("r2", "NOOP").await;
    assert!(noop.contains(&"* 1 EXPUNGE\r\n".to_owned()), "{noop:?}");

    // An idler hears of a flag change and an expunge at once.
    reader.writer.write_all(b"r3 IDLE\r\n").await.unwrap();
    assert!(reader.line().await.starts_with('+'));
    writer.command("w3", "UID STORE 3 +FLAGS (\\Flagged)").await;
    let heard = tokio::time::timeout(Duration::from_secs(5), reader.line())
        .await
        .unwrap();
    assert_eq!(heard, "* 2 FETCH (FLAGS (\\Flagged) UID 3)\r\n");
    writer.command("w4", "UID MOVE 2 Trash").await;
    let heard = tokio::time::timeout(Duration::from_secs(5), reader.line())
        .await
        .unwrap();
    assert_eq!(heard, "* 1 EXPUNGE\r\n");
    reader.writer.write_all(b"DONE\r\n").await.unwrap();
    assert!(reader.line().await.starts_with("r3 OK"));
    let fetched = reader.command("r4", "FETCH 1:* (UID FLAGS)").await;
    assert_eq!(
        fetched[0], "* 1 FETCH (UID 3 FLAGS (\\Flagged))\r\n",
        "{fetched:?}"
    );
}

#[tokio::test]
async fn big_literals_only_after_login_and_within_the_message_bound() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let settings = ImapSettings {
        max_message_bytes: 200 * 1024,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;

    let (mut peer, _) = Peer::connect(address).await;
    peer.writer
        .write_all(b"x1 LOGIN {100000}\r\n")
        .await
        .unwrap();
    let refused = peer.line().await;
    assert!(refused.starts_with("x1 BAD"), "{refused}");

    let mut peer = logged_in(address, alice.as_str()).await;
    let body = "x".repeat(150 * 1024);
    let big = format!("Subject: big\r\n\r\n{body}");
    let appended = append(&mut peer, "x2", "INBOX", "", &big).await;
    assert!(
        last(&appended).starts_with("x2 OK [APPENDUID"),
        "{appended:?}"
    );
    let body = "x".repeat(300 * 1024);
    let too_big = append(
        &mut peer,
        "x3",
        "INBOX",
        "",
        &format!("Subject: big\r\n\r\n{body}"),
    )
    .await;
    assert!(last(&too_big).starts_with("x3 BAD"), "{too_big:?}");
    assert_eq!(
        h.store
            .all_uids(&alice, &FolderName::parse("INBOX").unwrap())
            .await
            .unwrap(),
        [1]
    );
    // A non-synchronising literal over the bound is on its way already: BYE, and closed.
    peer.writer
        .write_all(format!("x4 APPEND INBOX {{{}+}}\r\n", 300 * 1024).as_bytes())
        .await
        .unwrap();
    let bye = peer.line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    // A command line over the bound without a literal: BAD, and the session goes on.
    let mut peer = logged_in(address, alice.as_str()).await;
    let long = format!("x5 SELECT {}\r\n", "a".repeat(300 * 1024));
    peer.writer.write_all(long.as_bytes()).await.unwrap();
    let refused = peer.line().await;
    assert!(refused.starts_with("x5 BAD"), "{refused}");
    let noop = peer.command("x6", "NOOP").await;
    assert!(last(&noop).starts_with("x6 OK"));
}

#[tokio::test]
async fn condstore_changedsince_and_racing_unchangedsince_stores() {
    let (h, address, alice, mut peer) = inbox_of_three().await;
    let caps = peer.command("c0", "CAPABILITY").await.join("");
    assert!(caps.contains("CONDSTORE"), "{caps}");
    let select = peer
        .command("c1", "SELECT INBOX (CONDSTORE)")
        .await
        .join("");
    let highest: u64 = select
        .split("[HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("HIGHESTMODSEQ in {select}"));
    peer.command("c2", "STORE 2 +FLAGS.SILENT (\\Seen)").await;
    let changed = peer
        .command("c3", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .await;
    assert_eq!(changed.len(), 2, "only message 2 changed: {changed:?}");
    assert!(
        changed[0].starts_with("* 2 FETCH (FLAGS (\\Seen) MODSEQ ("),
        "{changed:?}"
    );

    // Six sessions store on message 1 at once, each only if unchanged since now: one wins.
    let modseq_of_1: u64 = {
        let answer = peer.command("c4", "UID FETCH 1 (MODSEQ)").await;
        answer[0]
            .split("MODSEQ (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{answer:?}"))
    };
    // Logged in one after another (parallel logins are bounded per account), then racing.
    let mut peers = Vec::new();
    for _ in 0..6 {
        let mut peer = logged_in(address, alice.as_str()).await;
        peer.command("r0", "SELECT INBOX").await;
        peers.push(peer);
    }
    let racers: Vec<_> = peers
        .into_iter()
        .enumerate()
        .map(|(i, mut peer)| {
            tokio::spawn(async move {
                let command = format!("UID STORE 1 (UNCHANGEDSINCE {modseq_of_1}) +FLAGS ($r{i})");
                last(&peer.command("r1", &command).await).to_owned()
            })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        let answer = racer.await.unwrap();
        if answer.starts_with("r1 OK [MODIFIED 1]") {
            continue;
        }
        assert!(answer.starts_with("r1 OK STORE done"), "{answer}");
        won += 1;
    }
    assert_eq!(won, 1);
    let flags = &h
        .store
        .messages(&alice, &FolderName::parse("INBOX").unwrap(), 0, 1)
        .await
        .unwrap()[0]
        .flags;
    assert_eq!(flags.len(), 1, "one racer's keyword: {flags:?}");
}

#[tokio::test]
async fn sessions_per_account_are_bounded_and_given_back() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let settings = ImapSettings {
        max_sessions_per_account: 2,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let first = logged_in(address, alice.as_str()).await;
    let mut second = logged_in(address, alice.as_str()).await;
    let (mut third, _) = Peer::connect(address).await;
    let refused = third
        .command("t1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    assert!(last(&refused).starts_with("t1 NO [LIMIT]"), "{refused:?}");
    // Still not logged in: nothing but the states before LOGIN.
    let select = third.command("t2", "SELECT INBOX").await;
    assert!(last(&select).starts_with("t2 BAD"), "{select:?}");
    // Another account is not held up.
    logged_in(address, bob.as_str()).await;
    // A session that ends gives its slot back.
    second.command("t3", "LOGOUT").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = third
        .command("t4", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    assert!(last(&again).starts_with("t4 OK"), "{again:?}");
}

#[tokio::test]
async fn huge_sets_are_never_expanded() {
    let (_h, _, _, mut peer) = inbox_of_three().await;
    // Each would be billions of numbers if expanded; all answer at once (the peer waits 10 s).
    for (tag, command, first) in [
        ("h1", "UID FETCH 1:4294967295 (UID)", "* 1 FETCH (UID 1)"),
        ("h2", "FETCH 2:4294967295 (UID)", "* 2 FETCH (UID 2)"),
        ("h3", "UID SEARCH UID 2:4000000000,1", "* SEARCH 1 2 3"),
        ("h4", "SEARCH 1,3:4000000000", "* SEARCH 1 3"),
        // A new keyword is told first, even to a .SILENT store.
        (
            "h5",
            "UID STORE 3:4294967295 +FLAGS.SILENT (x)",
            "* FLAGS (",
        ),
    ] {
        let answer = peer.command(tag, command).await;
        assert!(answer[0].starts_with(first), "{command}: {answer:?}");
        assert!(
            last(&answer).starts_with(&format!("{tag} OK")),
            "{answer:?}"
        );
    }
}
