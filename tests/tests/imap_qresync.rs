//! QRESYNC (RFC 7162 §3.2) over real TCP: a client that kept a folder's UIDVALIDITY and MODSEQ
//! learns in one SELECT which of its messages are gone and which changed; removals while it is
//! selected come as `* VANISHED`; UID FETCH's VANISHED modifier; and the refusals (QRESYNC not
//! enabled, VANISHED without UID or CHANGEDSINCE).

use pushmail_tests::Harness;
use pushmail_tests::imap::{deliver, last, listener, logged_in, loopback_plaintext, ok};

/// The number after `word` in the first line holding it.
fn number_after(lines: &[String], word: &str) -> u64 {
    let line = lines
        .iter()
        .find(|l| l.contains(word))
        .unwrap_or_else(|| panic!("no {word} in {lines:?}"));
    let rest = &line[line.find(word).unwrap() + word.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn untagged<'a>(lines: &'a [String], start: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.starts_with(start))
        .map(|l| l.trim_end())
        .collect()
}

#[tokio::test]
async fn a_client_resynchronises_a_folder_in_one_select() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    for n in 1..=6 {
        let mail = format!("From: a@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n");
        deliver(&h, &alice, "INBOX", mail, vec![]).await;
    }

    let mut phone = logged_in(address, alice.as_str()).await;
    let capabilities = phone.command("c", "CAPABILITY").await.join("");
    assert!(capabilities.contains(" QRESYNC"), "{capabilities}");
    let refused = phone.command("r1", "SELECT INBOX (QRESYNC (1 1))").await;
    assert!(last(&refused).starts_with("r1 BAD"), "{refused:?}");
    let enabled = ok(&mut phone, "e", "ENABLE QRESYNC").await;
    assert_eq!(untagged(&enabled, "* ENABLED"), ["* ENABLED QRESYNC"]);
    let selected = ok(&mut phone, "s1", "SELECT INBOX").await;
    let validity = number_after(&selected, "UIDVALIDITY");
    let modseq = number_after(&selected, "HIGHESTMODSEQ");
    ok(&mut phone, "u", "UNSELECT").await;

    // While the phone is away: another client reads 2, removes 4 and 5, and a message comes.
    let mut desk = logged_in(address, alice.as_str()).await;
    ok(&mut desk, "d1", "SELECT INBOX").await;
    ok(&mut desk, "d2", "UID STORE 2 +FLAGS (\\Seen)").await;
    ok(&mut desk, "d3", "UID STORE 4:5 +FLAGS (\\Deleted)").await;
    let expunged = ok(&mut desk, "d4", "EXPUNGE").await;
    // Without QRESYNC, the old way.
    assert_eq!(untagged(&expunged, "* 4 EXPUNGE").len(), 2, "{expunged:?}");
    deliver(&h, &alice, "INBOX", "Subject: 7\r\n\r\n7\r\n", vec![]).await;

    let resync = format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:6))");
    let lines = ok(&mut phone, "s2", &resync).await;
    assert_eq!(
        untagged(&lines, "* VANISHED"),
        ["* VANISHED (EARLIER) 4:5"],
        "{lines:?}"
    );
    let fetches = untagged(&lines, "* ")
        .into_iter()
        .filter(|l| l.contains("FETCH"))
        .collect::<Vec<_>>();
    // 2 was read, 7 is new; 4 and 5 are gone, 1, 3 and 6 unchanged.
    assert_eq!(fetches.len(), 2, "{lines:?}");
    assert!(
        fetches
            .iter()
            .any(|l| l.contains("UID 2") && l.contains("\\Seen") && l.contains("MODSEQ")),
        "{fetches:?}"
    );
    assert!(fetches.iter().any(|l| l.contains("UID 7")), "{fetches:?}");
    assert!(
        !fetches
            .iter()
            .any(|l| l.contains("UID 1 ") || l.contains("UID 3 ")),
        "{fetches:?}"
    );

    // Known UIDs left out: every UID up to the folder's next; a far larger set costs nothing.
    let lines = ok(
        &mut phone,
        "s3",
        &format!("EXAMINE INBOX (QRESYNC ({validity} {modseq}))"),
    )
    .await;
    assert!(
        lines.iter().any(|l| l.starts_with("* OK [CLOSED]")),
        "{lines:?}"
    );
    assert_eq!(untagged(&lines, "* VANISHED"), ["* VANISHED (EARLIER) 4:5"]);
    let lines = ok(
        &mut phone,
        "s4",
        &format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:4294967295))"),
    )
    .await;
    assert_eq!(untagged(&lines, "* VANISHED"), ["* VANISHED (EARLIER) 4:5"]);
    // Another UIDVALIDITY: the client's state is of another folder; nothing is told.
    let other = validity + 1;
    let lines = ok(
        &mut phone,
        "s5",
        &format!("SELECT INBOX (QRESYNC ({other} {modseq}))"),
    )
    .await;
    assert!(untagged(&lines, "* VANISHED").is_empty(), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("FETCH")), "{lines:?}");

    // UID FETCH … (CHANGEDSINCE m VANISHED).
    let lines = ok(
        &mut phone,
        "f1",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"),
    )
    .await;
    assert_eq!(untagged(&lines, "* VANISHED"), ["* VANISHED (EARLIER) 4:5"]);
    for (tag, command) in [
        ("f2", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"),
        ("f3", "UID FETCH 1:* (FLAGS) (VANISHED)"),
    ] {
        let lines = phone.command(tag, command).await;
        assert!(
            last(&lines).starts_with(&format!("{tag} BAD")),
            "{command}: {lines:?}"
        );
    }

    // Removed while selected: one VANISHED for the lot, no EXPUNGE.
    ok(&mut desk, "d5", "UID STORE 1:3 +FLAGS (\\Deleted)").await;
    ok(&mut desk, "d6", "EXPUNGE").await;
    let lines = ok(&mut phone, "n", "NOOP").await;
    assert_eq!(
        untagged(&lines, "* VANISHED"),
        ["* VANISHED 1:3"],
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("EXPUNGE")), "{lines:?}");
    let lines = ok(&mut phone, "st", "STATUS INBOX (MESSAGES)").await;
    assert!(lines.iter().any(|l| l.contains("MESSAGES 2")), "{lines:?}");
}
