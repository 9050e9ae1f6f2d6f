//! IMAP's `\Recent` (RFC 3501 §2.3.2) over real TCP: a new message is recent to exactly one
//! session, the first read-write one told of it; EXAMINE and STATUS show what is unclaimed
//! without taking it; FETCH, SEARCH RECENT/NEW/OLD and `* N RECENT` agree; racing sessions
//! never both take a message.

use pushmail_tests::Harness;
use pushmail_tests::imap::{Peer, deliver, last, listener, logged_in, loopback_plaintext, ok};

fn mail(subject: &str) -> String {
    format!("From: bob@example.org\r\nSubject: {subject}\r\n\r\nHello\r\n")
}

fn recent_count(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|line| {
        line.strip_prefix("* ")?
            .strip_suffix(" RECENT\r\n")?
            .parse()
            .ok()
    })
}

/// `count` sessions of `account`, each with INBOX selected.
async fn sessions_with_inbox_selected(
    address: std::net::SocketAddr,
    account: &str,
    count: usize,
) -> Vec<Peer> {
    let mut sessions = Vec::new();
    for _ in 0..count {
        let mut peer = logged_in(address, account).await;
        ok(&mut peer, "a", "SELECT INBOX").await;
        sessions.push(peer);
    }
    sessions
}

/// The numbers a `* SEARCH` answer (the first line of `lines`) gives.
fn found(lines: &[String]) -> Vec<u32> {
    lines[0]
        .trim_end()
        .split(' ')
        .skip(2)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_new_message_is_recent_to_the_first_read_write_session_only() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    for subject in ["one", "two"] {
        deliver(&h, &alice, "INBOX", mail(subject), vec![]).await;
    }
    let mut first = logged_in(address, alice.as_str()).await;
    let mut second = logged_in(address, alice.as_str()).await;

    // EXAMINE and STATUS show the two as recent without taking them.
    let examined = ok(&mut first, "e1", "EXAMINE INBOX").await;
    assert_eq!(recent_count(&examined), Some(2), "{examined:?}");
    ok(&mut first, "e2", "CLOSE").await;
    let status = ok(&mut second, "s1", "STATUS INBOX (MESSAGES RECENT UNSEEN)").await;
    assert!(
        status.contains(&"* STATUS INBOX (MESSAGES 2 RECENT 2 UNSEEN 2)\r\n".to_owned()),
        "{status:?}"
    );

    // The first SELECT takes them; the second sees none.
    let selected = ok(&mut first, "e3", "SELECT INBOX").await;
    assert_eq!(recent_count(&selected), Some(2), "{selected:?}");
    let selected = ok(&mut second, "s2", "SELECT INBOX").await;
    assert_eq!(recent_count(&selected), Some(0), "{selected:?}");
    let status = ok(&mut second, "s3", "STATUS INBOX (RECENT)").await;
    assert!(status.contains(&"* STATUS INBOX (RECENT 0)\r\n".to_owned()));

    // FETCH and SEARCH agree, and \Recent stays through a flag change (a client cannot set it).
    ok(&mut first, "e4", "STORE 1 +FLAGS (\\Seen \\Recent)").await;
    let fetched = ok(&mut first, "e5", "FETCH 1:2 (FLAGS)").await;
    assert_eq!(fetched[0], "* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n");
    assert_eq!(fetched[1], "* 2 FETCH (FLAGS (\\Recent))\r\n");
    let fetched = ok(&mut second, "s4", "FETCH 1:2 (FLAGS)").await;
    assert_eq!(fetched[0], "* 1 FETCH (FLAGS (\\Seen))\r\n", "never stored");
    for (search, expected) in [
        ("SEARCH RECENT", "* SEARCH 1 2\r\n"),
        ("SEARCH NEW", "* SEARCH 2\r\n"),
        ("SEARCH OLD", "* SEARCH\r\n"),
    ] {
        let found = ok(&mut first, "e6", search).await;
        assert_eq!(found[0], expected, "{search}");
        let found = ok(&mut second, "s5", search).await;
        let expected = if search == "SEARCH OLD" {
            "* SEARCH 1 2\r\n"
        } else {
            "* SEARCH\r\n"
        };
        assert_eq!(found[0], expected, "{search} elsewhere");
    }

    // A message arriving now is recent to whichever session hears of it first, not to both.
    deliver(&h, &alice, "INBOX", mail("three"), vec![]).await;
    let heard = ok(&mut second, "s6", "NOOP").await;
    assert_eq!(
        heard[..2],
        ["* 3 EXISTS\r\n".to_owned(), "* 1 RECENT\r\n".to_owned()]
    );
    let heard = ok(&mut first, "e7", "NOOP").await;
    assert_eq!(
        heard[..2],
        ["* 3 EXISTS\r\n".to_owned(), "* 2 RECENT\r\n".to_owned()]
    );
}

#[tokio::test]
async fn racing_sessions_never_both_take_a_message() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let sessions = sessions_with_inbox_selected(address, alice.as_str(), 6).await;
    for n in 0..20 {
        deliver(&h, &alice, "INBOX", mail(&format!("m{n}")), vec![]).await;
    }
    // Every session hears of them at once; each message is recent to exactly one of them.
    let asked = sessions.into_iter().map(|mut peer| {
        tokio::spawn(async move {
            ok(&mut peer, "b", "NOOP").await;
            found(&ok(&mut peer, "c", "SEARCH RECENT").await)
        })
    });
    let mut recent = Vec::new();
    for session in asked {
        recent.extend(session.await.unwrap());
    }
    recent.sort_unstable();
    assert_eq!(recent, (1..=20).collect::<Vec<_>>());
}

/// A FETCH that reads the text marks every unread message it names `\Seen` (in one store write
/// for the lot) and tells the flags of those it changed; a PEEK, an EXAMINEd folder and
/// CHANGEDSINCE's left-out messages change nothing.
#[tokio::test]
async fn reading_many_messages_marks_each_read_once() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    for subject in ["one", "two", "three", "four"] {
        deliver(&h, &alice, "INBOX", mail(subject), vec![]).await;
    }
    let mut peer = logged_in(address, alice.as_str()).await;
    ok(&mut peer, "a1", "EXAMINE INBOX").await;
    let peeked = ok(&mut peer, "a2", "FETCH 1:4 (BODY[TEXT])").await;
    assert!(peeked.iter().all(|l| !l.contains("\\Seen")), "{peeked:?}");
    ok(&mut peer, "a3", "SELECT INBOX (CONDSTORE)").await;
    ok(&mut peer, "a4", "FETCH 1:4 (BODY.PEEK[TEXT])").await;
    let status = ok(&mut peer, "a5", "STATUS INBOX (UNSEEN HIGHESTMODSEQ)").await;
    assert!(status[0].contains("UNSEEN 4"), "{status:?}");
    let highest: u64 = status[0]
        .split("HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches(")\r\n").parse().ok())
        .unwrap();
    ok(&mut peer, "a6", "STORE 2 +FLAGS.SILENT (\\Seen)").await;
    // CHANGEDSINCE leaves out (and so does not mark) the messages not changed after it.
    let since = ok(
        &mut peer,
        "a7",
        &format!("FETCH 1:4 (BODY[TEXT]) (CHANGEDSINCE {highest})"),
    )
    .await;
    assert_eq!(
        since.len(),
        4,
        "only message 2, its literal, then OK: {since:?}"
    );
    assert!(since[0].starts_with("* 2 FETCH ("), "{since:?}");
    let read = ok(&mut peer, "a8", "FETCH 1:4 (BODY[TEXT])").await;
    let told: Vec<&String> = read.iter().filter(|l| l.contains("FETCH (")).collect();
    assert_eq!(told.len(), 4, "{read:?}");
    for (n, line) in told.iter().enumerate() {
        // Messages 1, 3 and 4 were changed by this FETCH: their flags are told; 2 was read.
        assert_eq!(line.contains("FLAGS (\\Seen"), n != 1, "{line}");
    }
    let status = ok(&mut peer, "a9", "STATUS INBOX (UNSEEN)").await;
    assert_eq!(status[0], "* STATUS INBOX (UNSEEN 0)\r\n");
    let changed = ok(&mut peer, "a10", "FETCH 1:4 (FLAGS MODSEQ)").await;
    let modseqs: Vec<u64> = changed
        .iter()
        .filter_map(|l| l.split("MODSEQ (").nth(1)?.split(')').next()?.parse().ok())
        .collect();
    assert_eq!(modseqs.len(), 4, "{changed:?}");
    let mut distinct = modseqs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "each change its own MODSEQ: {modseqs:?}");
}

fn uid_of_append(lines: &[String]) -> u32 {
    let line = last(lines);
    let uid = line.split("APPENDUID ").nth(1).and_then(|rest| {
        let mut fields = rest.split([' ', ']']);
        fields.nth(1)?.parse().ok()
    });
    uid.unwrap_or_else(|| panic!("no APPENDUID: {lines:?}"))
}

async fn append(peer: &mut Peer, tag: &str, folder: &str, subject: &str) -> Vec<String> {
    let message = mail(subject);
    // A non-synchronizing literal (LITERAL+): the command in one go.
    let command = format!("APPEND {folder} {{{}+}}\r\n{message}", message.len());
    ok(peer, tag, &command).await
}

/// A session that APPENDs into the folder it has selected read-write is the first told of the
/// new message (at the end of its APPEND), so it is recent to that session, claimed with the
/// APPEND's own write; into another folder, or with the folder EXAMINEd, nothing is claimed.
#[tokio::test]
async fn an_append_into_the_selected_folder_is_recent_to_the_appender() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    deliver(&h, &alice, "INBOX", mail("one"), vec![]).await;
    let mut first = logged_in(address, alice.as_str()).await;
    let mut second = logged_in(address, alice.as_str()).await;
    let selected = ok(&mut first, "a1", "SELECT INBOX").await;
    assert_eq!(recent_count(&selected), Some(1), "{selected:?}");
    ok(&mut second, "b1", "SELECT INBOX").await;

    let appended = append(&mut second, "b2", "INBOX", "two").await;
    assert_eq!(
        appended[..2],
        ["* 2 EXISTS\r\n".to_owned(), "* 1 RECENT\r\n".to_owned()],
        "{appended:?}"
    );
    assert_eq!(uid_of_append(&appended), 2);
    let fetched = ok(&mut second, "b3", "FETCH 2 (FLAGS)").await;
    assert_eq!(fetched[0], "* 2 FETCH (FLAGS (\\Recent))\r\n");
    let heard = ok(&mut first, "a2", "NOOP").await;
    assert_eq!(
        heard[..2],
        ["* 2 EXISTS\r\n".to_owned(), "* 1 RECENT\r\n".to_owned()],
        "the appender took it"
    );

    // Into a folder not selected: left for the first session to select it.
    ok(&mut first, "a3", "CREATE Other").await;
    append(&mut first, "a4", "Other", "three").await;
    ok(&mut first, "a5", "EXAMINE Other").await;
    append(&mut first, "a6", "Other", "four").await;
    let selected = ok(&mut second, "b4", "SELECT Other").await;
    assert_eq!(recent_count(&selected), Some(2), "{selected:?}");
}

/// Sessions with the folder selected APPEND at once: each gets its own messages as recent, and
/// every message is recent to exactly one session.
#[tokio::test]
async fn racing_appenders_each_get_their_own_messages_as_recent() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let sessions = sessions_with_inbox_selected(address, alice.as_str(), 6).await;
    let appending = sessions.into_iter().enumerate().map(|(n, mut peer)| {
        tokio::spawn(async move {
            let mut own = Vec::new();
            for m in 0..3 {
                let lines = append(&mut peer, "b", "INBOX", &format!("s{n} m{m}")).await;
                own.push(uid_of_append(&lines));
            }
            ok(&mut peer, "c", "NOOP").await;
            let recent = found(&ok(&mut peer, "d", "UID SEARCH RECENT").await);
            (own, recent)
        })
    });
    let mut all = Vec::new();
    for session in appending {
        let (own, recent) = session.await.unwrap();
        assert!(
            own.iter().all(|uid| recent.contains(uid)),
            "{own:?} {recent:?}"
        );
        all.extend(recent);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=18).collect::<Vec<_>>());
}
