//! IMAP against what an attacker or a buggy client stores and asks: odd messages fetched item by
//! item, sets however sparse, and a session's panic ending that session alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pushmail_listener::{Conversation, Departure, Limits};
use pushmail_tests::Harness;
use pushmail_tests::fixtures::new_message;
use pushmail_tests::imap::{deliver, last, listener, logged_in, loopback_plaintext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Messages no parser expects: each stored, then fetched with every item FETCH has.
const ODD_MESSAGES: &[&[u8]] = &[
    b"",
    b"   ",
    b"\r\n",
    b"\r\n\r\n",
    b"no header at all, only text",
    b"Subject: header only",
    b"Subject: header only\r\n",
    b"From: a@b\r\n\r\n",
    b"\0\0\0",
    b"Subject: \0nul\r\n\r\nbody\0\r\n",
    b"Subject: \xff\xfe eight bit\r\n\r\n\xe9t\xe9\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\n   ",
    b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
    b"From: \"unclosed <a@b\r\nTo: ;;;,,,@\r\nDate: not a date\r\n\r\n",
    b"To: group: ;\r\nCc: undisclosed-recipients:;\r\n\r\n",
];

const EVERY_ITEM: &str = "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODY BODYSTRUCTURE \
     RFC822.HEADER BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] \
     BODY.PEEK[1.TEXT] BODY.PEEK[1.HEADER] BODY.PEEK[2.1] BODY.PEEK[HEADER.FIELDS (FROM TO)] \
     BODY.PEEK[HEADER.FIELDS.NOT (FROM)] BODY.PEEK[]<0.2> RFC822.TEXT RFC822)";

#[tokio::test]
async fn odd_messages_are_fetched_item_by_item_and_the_session_goes_on() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    for raw in ODD_MESSAGES {
        deliver(&h, &alice, "INBOX", raw.to_vec(), Vec::new()).await;
    }
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    let select = peer.command("s", "SELECT INBOX").await;
    assert!(last(&select).starts_with("s OK"), "{select:?}");
    for seq in 1..=ODD_MESSAGES.len() {
        let tag = format!("f{seq}");
        let fetched = peer
            .command(&tag, &format!("FETCH {seq} {EVERY_ITEM}"))
            .await;
        assert!(
            last(&fetched).starts_with(&format!("{tag} OK")),
            "message {:?}: {fetched:?}",
            String::from_utf8_lossy(ODD_MESSAGES[seq - 1])
        );
        // Each item on its own too: a bug in one must not hide behind another.
        for item in ["ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[1.TEXT]"] {
            let tag = format!("g{seq}");
            let one = peer.command(&tag, &format!("FETCH {seq} ({item})")).await;
            assert!(last(&one).starts_with(&format!("{tag} OK")), "{one:?}");
        }
    }
    // An empty message's ENVELOPE is all NIL, as Dovecot answers.
    let empty = peer.command("e", "FETCH 1 (ENVELOPE)").await;
    assert!(
        empty[0].contains("ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
        "{empty:?}"
    );
    let search = peer.command("t", "SEARCH TEXT nothing-matches").await;
    assert!(last(&search).starts_with("t OK"), "{search:?}");
}

#[tokio::test]
async fn a_sparse_set_fetches_every_message_it_names() {
    // On the embedded store whatever backend the run uses: this is about FETCH's reads, and
    // 1,100 deliveries on moto take minutes (the backends' paging has its conformance test).
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn pushmail_store::Store> =
        Arc::new(pushmail_store::EmbeddedStore::open(&dir.path().join("sparse.redb")).unwrap());
    let mut account = pushmail_tests::fixtures::account("alice@sparse.example");
    account.password_hash =
        pushmail_core::password::hash_password(pushmail_tests::PASSWORD).unwrap();
    store.put_account(&account).await.unwrap();
    let alice = account.address.clone();
    store
        .create_default_folders(&alice, chrono::Utc::now())
        .await
        .unwrap();
    // More than one read's window past the first target (the old read stopped at len + 1000).
    let count = 1_100;
    let inbox = pushmail_core::folder::FolderName::inbox();
    for n in 1..=count {
        let message = new_message(format!("Subject: {n}\r\n\r\n{n}\r\n"));
        store.deliver(&alice, &inbox, &message, None).await.unwrap();
    }
    let imap = pushmail_imap::Imap::new(
        store,
        loopback_plaintext(),
        pushmail_core::hints::ChangeHints::new(),
    );
    let (address, _) = serve_on_loopback(imap, Limits::default()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    peer.command("s", "SELECT INBOX").await;
    for (tag, command, expected) in [
        ("a", "FETCH 1,1100 (UID)", vec![1, 1100]),
        ("b", "UID FETCH 1,1050,1100 (UID)", vec![1, 1050, 1100]),
        ("c", "FETCH 2,3,1099:* (UID)", vec![2, 3, 1099, 1100]),
    ] {
        let fetched = peer.command(tag, command).await;
        assert!(
            last(&fetched).starts_with(&format!("{tag} OK")),
            "{fetched:?}"
        );
        let uids: Vec<u32> = fetched
            .iter()
            .filter_map(|line| line.split("(UID ").nth(1))
            .filter_map(|rest| rest.trim_end_matches([')', '\r', '\n']).parse().ok())
            .collect();
        assert_eq!(uids, expected, "{command}");
    }
    let all = peer.command("d", "FETCH 1:* (UID)").await;
    assert_eq!(all.len(), count + 1);
}

/// Serves `conversation` within `limits` on a free loopback port: its address, and the
/// listener's task.
async fn serve_on_loopback<C: Conversation>(
    conversation: C,
    limits: Limits,
) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = tokio::spawn(pushmail_listener::serve(
        listener,
        Arc::new(conversation),
        limits,
        std::future::pending(),
    ));
    (address, served)
}

/// A conversation that panics in its first session and serves the others.
struct PanicsOnce {
    sessions: AtomicUsize,
}

impl Conversation for PanicsOnce {
    async fn converse(&self, mut stream: TcpStream, _peer: SocketAddr, _departure: Departure) {
        if self.sessions.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a bug in one session\r\nforged log line");
        }
        let _ = stream.write_all(b"served\r\n").await;
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"too many\r\n"
    }

    fn protocol(&self) -> &'static str {
        "test"
    }
}

#[tokio::test]
async fn a_panic_ends_its_session_only_and_gives_its_places_back() {
    // One session per source: if the panicking session kept its place, the next would be
    // told "too many".
    let limits = Limits {
        max_connections: 1,
        max_connections_per_source: 1,
        ..Limits::default()
    };
    let panics_once = PanicsOnce {
        sessions: AtomicUsize::new(0),
    };
    let (address, served) = serve_on_loopback(panics_once, limits).await;
    let read_all = async |address| {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
            .await
            .expect("closed within 5 s")
            .ok();
        answer
    };
    assert_eq!(read_all(address).await, "", "the panicking session closes");
    for _ in 0..3 {
        assert_eq!(read_all(address).await, "served\r\n");
    }
    assert!(!served.is_finished(), "the listener goes on");
}

#[tokio::test]
async fn a_session_of_a_deleted_account_ends_and_never_sees_the_next_owner() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    deliver(
        &h,
        &alice,
        "INBOX",
        &b"Subject: old\r\n\r\nold\r\n"[..],
        Vec::new(),
    )
    .await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut old = logged_in(address, alice.as_str()).await;
    let select = old.command("s", "SELECT INBOX").await;
    assert!(last(&select).starts_with("s OK"), "{select:?}");
    let deleted = h
        .admin_as_server("DELETE", &format!("/admin/accounts/{alice}"), None)
        .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    h.account("alice").await;
    deliver(
        &h,
        &alice,
        "INBOX",
        &b"Subject: new owner\r\n\r\nmine\r\n"[..],
        Vec::new(),
    )
    .await;
    // Within seconds the old session is told BYE instead of an answer.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let answer = old.command_or_bye("f", "FETCH 1:* (BODY.PEEK[])").await;
    assert!(
        answer.iter().any(|line| line.starts_with("* BYE")),
        "{answer:?}"
    );
    assert!(!answer.join("").contains("mine"), "{answer:?}");
    // A password change ends sessions too.
    let mut session = logged_in(address, alice.as_str()).await;
    let changed = h
        .admin_as_server(
            "PATCH",
            &format!("/admin/accounts/{alice}"),
            Some(serde_json::json!({"password": "another-password-1234"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let answer = session.command_or_bye("n", "NOOP").await;
    assert!(
        answer.iter().any(|line| line.starts_with("* BYE")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn only_appends_literal_may_pass_64_kib_and_only_up_to_the_message_limit() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let limit = 200 * 1024;
    let settings = pushmail_imap::ImapSettings {
        max_message_bytes: limit,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    // A command line over 64 KiB after login: refused, the session goes on.
    let long = format!("SEARCH {}", "SUBJECT x ".repeat(10_000));
    let refused = peer.command("a", &long).await;
    assert!(last(&refused).starts_with("a BAD"), "{refused:?}");
    // A literal over 64 KiB in anything but APPEND: not invited.
    peer.writer
        .write_all(format!("b SEARCH SUBJECT {{{}}}\r\n", 100 * 1024).as_bytes())
        .await
        .unwrap();
    let answer = peer.line().await;
    assert!(answer.starts_with("b BAD"), "{answer}");
    // APPEND's literal: exactly the limit is taken, one octet more is not invited.
    for (tag, size, taken) in [("c", limit, true), ("d", limit + 1, false)] {
        peer.writer
            .write_all(format!("{tag} APPEND INBOX {{{size}}}\r\n").as_bytes())
            .await
            .unwrap();
        let invited = peer.line().await;
        assert_eq!(invited.starts_with('+'), taken, "{size}: {invited}");
        if taken {
            let mut message = b"Subject: big\r\n\r\n".to_vec();
            message.resize(size, b'x');
            peer.writer.write_all(&message).await.unwrap();
            peer.writer.write_all(b"\r\n").await.unwrap();
            let stored = peer.line().await;
            assert!(stored.starts_with(&format!("{tag} OK")), "{stored}");
        }
    }
    let noop = peer.command("e", "NOOP").await;
    assert!(last(&noop).starts_with("e OK"), "{noop:?}");
}

#[tokio::test]
async fn one_account_uploads_at_most_two_large_appends_at_once() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let size = 1024 * 1024;
    let mut uploading = Vec::new();
    for n in 0..2 {
        let mut peer = logged_in(address, alice.as_str()).await;
        peer.writer
            .write_all(format!("u{n} APPEND INBOX {{{size}}}\r\n").as_bytes())
            .await
            .unwrap();
        assert!(peer.line().await.starts_with('+'));
        uploading.push(peer);
    }
    // A third session of the account is not invited while two uploads are open...
    let mut third = logged_in(address, alice.as_str()).await;
    third
        .writer
        .write_all(format!("t APPEND INBOX {{{size}}}\r\n").as_bytes())
        .await
        .unwrap();
    let refused = third.line().await;
    assert!(
        refused.starts_with("t BAD") || refused.starts_with("t NO"),
        "{refused}"
    );
    // ...another account is.
    let bob = h.account("bob").await;
    let mut other = logged_in(address, bob.as_str()).await;
    other
        .writer
        .write_all(format!("o APPEND INBOX {{{size}}}\r\n").as_bytes())
        .await
        .unwrap();
    assert!(other.line().await.starts_with('+'));
    // Once an upload is done, the third may go.
    let mut first = uploading.remove(0);
    let mut message = b"Subject: one\r\n\r\n".to_vec();
    message.resize(size, b'x');
    first.writer.write_all(&message).await.unwrap();
    first.writer.write_all(b"\r\n").await.unwrap();
    assert!(first.line().await.starts_with("u0 OK"));
    first.command("n", "NOOP").await;
    third
        .writer
        .write_all(format!("t2 APPEND INBOX {{{size}}}\r\n").as_bytes())
        .await
        .unwrap();
    assert!(third.line().await.starts_with('+'));
}

#[tokio::test]
async fn keywords_are_bounded_per_message_and_merged_in_linear_time() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    deliver(
        &h,
        &alice,
        "INBOX",
        &b"Subject: k\r\n\r\nk\r\n"[..],
        Vec::new(),
    )
    .await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    peer.command("s", "SELECT INBOX").await;
    // Far more than a message may carry, in one command within 64 KiB: refused whole.
    let many: Vec<String> = (0..5_000).map(|n| format!("k{n}")).collect();
    let refused = peer
        .command("a", &format!("STORE 1 +FLAGS.SILENT ({})", many.join(" ")))
        .await;
    assert!(last(&refused).starts_with("a NO [LIMIT]"), "{refused:?}");
    // Up to the bound, in several commands: the message never carries more than the bound.
    let bound = pushmail_core::mailbox::MAX_FLAGS_PER_MESSAGE;
    for chunk in many[..bound * 2].chunks(bound) {
        let answer = peer
            .command("b", &format!("STORE 1 +FLAGS.SILENT ({})", chunk.join(" ")))
            .await;
        assert!(last(&answer).starts_with("b OK"), "{answer:?}");
    }
    let flags = h.stored_messages(&alice, "INBOX").await[0].0.flags.len();
    assert_eq!(flags, bound);
}

#[tokio::test]
async fn a_session_that_never_logs_in_ends_however_busy_it_keeps() {
    let h = Harness::start().await;
    let settings = pushmail_imap::ImapSettings {
        login_timeout: Duration::from_secs(1),
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let (mut peer, _) = pushmail_tests::imap::Peer::connect(address).await;
    let started = std::time::Instant::now();
    loop {
        let answer = peer.command_or_bye("c", "CAPABILITY").await;
        if answer.iter().any(|line| line.starts_with("* BYE")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still connected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_login_verified_a_moment_ago_skips_argon2_but_not_the_limits() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    // Verified once, then trusted: a second login needs no hashing slot...
    logged_in(address, alice.as_str()).await;
    logged_in(address, alice.as_str()).await;
    // ...but still counts: after five wrong passwords the right one is refused too.
    for n in 0..5 {
        let (mut peer, _) = pushmail_tests::imap::Peer::connect(address).await;
        let tag = format!("w{n}");
        let wrong = peer.command(&tag, &format!("LOGIN {alice} wrong")).await;
        assert!(last(&wrong).starts_with(&format!("{tag} NO")), "{wrong:?}");
    }
    let (mut peer, _) = pushmail_tests::imap::Peer::connect(address).await;
    let refused = peer
        .command(
            "r",
            &format!("LOGIN {alice} \"{}\"", pushmail_tests::PASSWORD),
        )
        .await;
    assert!(last(&refused).starts_with("r NO [LIMIT]"), "{refused:?}");
}

/// A conversation that says goodbye, gives its place back, and only then winds down slowly
/// (a TLS close, a flush to a slow peer).
struct LeavesEarly;

impl Conversation for LeavesEarly {
    async fn converse(&self, mut stream: TcpStream, _peer: SocketAddr, mut departure: Departure) {
        departure.leave();
        let _ = stream.write_all(b"bye\r\n").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"too many\r\n"
    }

    fn protocol(&self) -> &'static str {
        "test"
    }
}

#[tokio::test]
async fn a_place_given_back_with_the_goodbye_is_free_for_the_next_connection_at_once() {
    let limits = Limits {
        max_connections_per_source: 1,
        ..Limits::default()
    };
    let (address, _) = serve_on_loopback(LeavesEarly, limits).await;
    // Each client reconnects the moment it reads the goodbye, while the last session is still
    // winding down: one place per source, and never "too many".
    for _ in 0..3 {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut first = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut first))
            .await
            .expect("a greeting within 5 s")
            .unwrap();
        assert_eq!(&first, b"bye\r\n");
    }
}
