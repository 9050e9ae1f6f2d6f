//! Sessions that fell out of the change log's window (the store keeps each account's newest
//! changes only), over real TCP on a store keeping sixteen: a selected session is brought up
//! to date from the folder itself (removals as EXPUNGE, then every message's flags, new mail as
//! EXISTS), not from a log with changes missing; a command during which removals may not be
//! told leaves that for the next; with QRESYNC the removals come as one VANISHED and the flags
//! with their MODSEQ; a NOTIFY session is told the state of every folder it watches, the one
//! whose only change was dropped included.

use std::num::NonZeroU64;
use std::time::Duration;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::FlagChange;
use pushmail_store::ChangeWindow;
use pushmail_tests::imap::{deliver, listener, logged_in, loopback_plaintext, ok};
use pushmail_tests::{Harness, Setup};
use tokio::io::AsyncWriteExt;

async fn harness() -> Harness {
    Harness::start_with(Setup {
        change_window: ChangeWindow::keeping(NonZeroU64::new(16).expect("not zero")),
        ..Setup::default()
    })
    .await
}

fn folder(name: &str) -> FolderName {
    FolderName::parse(name).expect("a folder name")
}

/// Sixty flag changes on `uid`, ending as it began: far more than the window.
async fn toggle_sixty_times(h: &Harness, account: &pushmail_core::types::Address, uid: u32) {
    for round in 0..60 {
        let change = match round % 2 {
            0 => FlagChange::Add(vec!["\\Seen".into()]),
            _ => FlagChange::Remove(vec!["\\Seen".into()]),
        };
        h.store
            .update_flags(account, &folder("INBOX"), uid, &change)
            .await
            .expect("flags changed");
    }
}

#[tokio::test]
async fn a_selected_session_that_fell_out_of_the_log_is_told_the_folder_as_it_is() {
    let h = harness().await;
    let alice = h.account("alice").await;
    for n in 1..=5 {
        let raw = format!("Subject: {n}\r\n\r\n{n}\r\n");
        deliver(&h, &alice, "INBOX", raw, vec![]).await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut desk = logged_in(address, alice.as_str()).await;
    let selected = ok(&mut desk, "s", "SELECT INBOX").await;
    assert!(
        selected.iter().any(|l| l.starts_with("* 5 EXISTS")),
        "{selected:?}"
    );

    // Another client: message 2 removed, 3 flagged, 1 changed sixty times, two new.
    let inbox = folder("INBOX");
    let deleted = FlagChange::Add(vec!["\\Deleted".into()]);
    h.store
        .update_flags(&alice, &inbox, 2, &deleted)
        .await
        .unwrap();
    assert_eq!(
        h.store.expunge(&alice, &inbox, &[2], true).await.unwrap(),
        [2]
    );
    let flagged = FlagChange::Add(vec!["\\Flagged".into()]);
    h.store
        .update_flags(&alice, &inbox, 3, &flagged)
        .await
        .unwrap();
    toggle_sixty_times(&h, &alice, 1).await;
    deliver(&h, &alice, "INBOX", "Subject: 6\r\n\r\n6\r\n", vec![]).await;
    deliver(&h, &alice, "INBOX", "Subject: 7\r\n\r\n7\r\n", vec![]).await;

    // A FETCH by sequence number may not be told of removals: nothing of them yet.
    let during = ok(&mut desk, "f", "FETCH 1 (FLAGS)").await;
    assert!(!during.iter().any(|l| l.contains("EXPUNGE")), "{during:?}");

    let caught_up = ok(&mut desk, "n", "NOOP").await;
    let told: Vec<&str> = caught_up.iter().map(|l| l.trim_end()).collect();
    let expunge = told.iter().position(|l| *l == "* 2 EXPUNGE");
    let exists = told.iter().position(|l| *l == "* 6 EXISTS");
    assert!(expunge.is_some() && exists.is_some(), "{told:?}");
    assert!(expunge < exists, "{told:?}");
    // Recent to this session: the five it claimed at SELECT, less one, and the two new.
    assert!(told.contains(&"* 6 RECENT"), "{told:?}");
    // Every message it had is told with its flags as they are (which changed is not known).
    let flags = [
        (1, 1, "(\\Recent)"),
        (2, 3, "(\\Flagged \\Recent)"),
        (3, 4, "(\\Recent)"),
        (4, 5, "(\\Recent)"),
    ];
    for (seq, uid, flags) in flags {
        let line = format!("* {seq} FETCH (FLAGS {flags} UID {uid})");
        assert!(told.contains(&line.as_str()), "{line} in {told:?}");
    }
    // The view is the folder's: sequence numbers and UIDs agree with the store's.
    let listed = ok(&mut desk, "u", "FETCH 1:* (UID)").await;
    let uids: Vec<&str> = listed
        .iter()
        .filter(|l| l.starts_with("* "))
        .map(|l| l.trim_end())
        .collect();
    assert_eq!(
        uids,
        [
            "* 1 FETCH (UID 1)",
            "* 2 FETCH (UID 3)",
            "* 3 FETCH (UID 4)",
            "* 4 FETCH (UID 5)",
            "* 5 FETCH (UID 6)",
            "* 6 FETCH (UID 7)"
        ]
    );
    // From there on the log is read as before.
    h.store
        .update_flags(&alice, &inbox, 7, &flagged)
        .await
        .unwrap();
    let next = ok(&mut desk, "n2", "NOOP").await;
    let fetches: Vec<&str> = next
        .iter()
        .filter(|l| l.starts_with("* "))
        .map(|l| l.trim_end())
        .collect();
    assert_eq!(fetches, ["* 6 FETCH (FLAGS (\\Flagged \\Recent) UID 7)"]);
}

#[tokio::test]
async fn a_notify_session_that_fell_out_of_the_log_is_told_every_watched_folder() {
    let h = harness().await;
    let alice = h.account("alice").await;
    deliver(&h, &alice, "INBOX", "Subject: 1\r\n\r\n1\r\n", vec![]).await;
    h.store
        .create_folder(&alice, &folder("Lists"), chrono::Utc::now())
        .await
        .unwrap();
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut phone = logged_in(address, alice.as_str()).await;
    ok(
        &mut phone,
        "n",
        "NOTIFY SET (INBOXES (MessageNew MessageExpunge FlagChange)) (MAILBOXES Lists (MessageNew MessageExpunge))",
    )
    .await;
    // Half a command: the session reads it, not the log, while the changes are made.
    phone.writer.write_all(b"q NOOP").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New mail in Lists, then sixty changes in the INBOX push it out of the log.
    deliver(&h, &alice, "Lists", "Subject: l\r\n\r\nl\r\n", vec![]).await;
    toggle_sixty_times(&h, &alice, 1).await;
    phone.writer.write_all(b"\r\n").await.unwrap();
    let mut told = Vec::new();
    loop {
        let line = phone.line().await.trim_end().to_owned();
        if line.starts_with("q ") {
            assert!(line.starts_with("q OK"), "{line}");
            break;
        }
        told.push(line);
    }
    assert!(
        told.iter()
            .any(|l| l.starts_with("* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")),
        "{told:?}"
    );
    assert!(
        told.iter().any(|l| l.starts_with("* STATUS INBOX (")),
        "{told:?}"
    );
}

#[tokio::test]
async fn a_qresync_session_that_fell_out_of_the_log_is_told_removals_as_vanished() {
    let h = harness().await;
    let alice = h.account("alice").await;
    for n in 1..=4 {
        let raw = format!("Subject: {n}\r\n\r\n{n}\r\n");
        deliver(&h, &alice, "INBOX", raw, vec![]).await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut phone = logged_in(address, alice.as_str()).await;
    ok(&mut phone, "e", "ENABLE QRESYNC").await;
    ok(&mut phone, "s", "SELECT INBOX").await;
    let inbox = folder("INBOX");
    let deleted = FlagChange::Add(vec!["\\Deleted".into()]);
    for uid in [1, 3] {
        h.store
            .update_flags(&alice, &inbox, uid, &deleted)
            .await
            .unwrap();
    }
    h.store
        .expunge(&alice, &inbox, &[1, 3], true)
        .await
        .unwrap();
    toggle_sixty_times(&h, &alice, 2).await;
    let told = ok(&mut phone, "n", "NOOP").await;
    let told: Vec<&str> = told.iter().map(|l| l.trim_end()).collect();
    assert!(told.contains(&"* VANISHED 1,3"), "{told:?}");
    assert!(!told.iter().any(|l| l.contains("EXPUNGE")), "{told:?}");
    // The flags come with each message's MODSEQ (QRESYNC implies CONDSTORE).
    let fetches: Vec<&&str> = told.iter().filter(|l| l.contains(" FETCH ")).collect();
    assert_eq!(fetches.len(), 2, "{told:?}");
    assert!(fetches.iter().all(|l| l.contains("MODSEQ (")), "{told:?}");
    let listed = ok(&mut phone, "u", "UID SEARCH ALL").await;
    assert!(
        listed.iter().any(|l| l.trim_end() == "* SEARCH 2 4"),
        "{listed:?}"
    );
}
