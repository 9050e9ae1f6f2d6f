//! ENVELOPE, BODY and BODYSTRUCTURE kept between FETCHes (`shared/imap/src/summaries.rs`), over
//! real TCP: a second FETCH answers as the first, and a folder made again under the same name
//! (its UIDs starting over), or an address deleted and made again, never gets the structure of
//! a message that was there before.

use pushmail_store::AccountDelete;
use pushmail_tests::Harness;
use pushmail_tests::imap::{deliver, listener, logged_in, loopback_plaintext, ok};

fn mail(subject: &str, parts: &[&str]) -> String {
    let mut raw = format!(
        "From: Bob <bob@example.org>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    );
    for part in parts {
        raw.push_str(&format!("--b\r\nContent-Type: {part}\r\n\r\nhello\r\n"));
    }
    raw.push_str("--b--\r\n");
    raw
}

const ITEMS: &str = "FETCH 1 (ENVELOPE BODY BODYSTRUCTURE)";

#[tokio::test]
async fn structure_is_never_told_of_another_message() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    ok(&mut peer, "a1", "CREATE Box").await;
    deliver(&h, &alice, "Box", mail("first", &["text/plain"]), vec![]).await;
    ok(&mut peer, "a2", "SELECT Box").await;
    let first = ok(&mut peer, "a3", ITEMS).await;
    assert!(first[0].contains("\"first\""), "{first:?}");
    // BODY and BODYSTRUCTURE both, when both are asked.
    assert!(first[0].contains(") BODY ((") && first[0].contains(" BODYSTRUCTURE (("));
    // Asked again (kept now), and each item alone: the same answer.
    assert_eq!(ok(&mut peer, "a4", ITEMS).await[0], first[0]);
    let structure = ok(&mut peer, "a5", "FETCH 1 (BODYSTRUCTURE)").await;
    let told = structure[0].trim_start_matches("* 1 FETCH (BODYSTRUCTURE ");
    assert!(
        first[0].contains(told.trim_end_matches(")\r\n")),
        "{structure:?}"
    );

    // The folder deleted and made again: its first message is UID 1 again, another message.
    ok(&mut peer, "a6", "UNSELECT").await;
    ok(&mut peer, "a7", "DELETE Box").await;
    ok(&mut peer, "a8", "CREATE Box").await;
    deliver(
        &h,
        &alice,
        "Box",
        mail("second", &["text/html", "image/png"]),
        vec![],
    )
    .await;
    ok(&mut peer, "a9", "SELECT Box").await;
    let uid = ok(&mut peer, "a10", "FETCH 1 (UID)").await;
    assert!(uid[0].contains("UID 1)"), "the UID is used again: {uid:?}");
    let second = ok(&mut peer, "a11", ITEMS).await;
    assert!(second[0].contains("\"second\""), "{second:?}");
    assert!(second[0].contains("\"image\" \"png\""), "{second:?}");
    assert!(!second[0].contains("\"first\""), "{second:?}");
    ok(&mut peer, "a12", "LOGOUT").await;

    // The address deleted and made again: a new person, whose INBOX starts at UID 1 too.
    deliver(
        &h,
        &alice,
        "INBOX",
        mail("alice's", &["text/plain"]),
        vec![],
    )
    .await;
    let mut peer = logged_in(address, alice.as_str()).await;
    ok(&mut peer, "b1", "SELECT INBOX").await;
    let before = ok(&mut peer, "b2", ITEMS).await;
    assert!(before[0].contains("\"alice's\""), "{before:?}");
    ok(&mut peer, "b3", "LOGOUT").await;
    let deleted = h.store.delete_account(&alice).await.unwrap();
    assert!(
        matches!(deleted, AccountDelete::Deleted { .. }),
        "{deleted:?}"
    );
    let alice = h.account("alice").await;
    deliver(
        &h,
        &alice,
        "INBOX",
        mail("newcomer's", &["text/plain"]),
        vec![],
    )
    .await;
    let mut peer = logged_in(address, alice.as_str()).await;
    ok(&mut peer, "c1", "SELECT INBOX").await;
    let after = ok(&mut peer, "c2", ITEMS).await;
    assert!(after[0].contains("\"newcomer's\""), "{after:?}");
    assert!(!after[0].contains("alice's"), "{after:?}");
}

#[tokio::test]
async fn an_envelope_alone_answers_as_the_summary_would() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    // Every field ENVELOPE tells, and an attachment its header alone leaves unread.
    let raw = "Date: Fri, 27 Nov 2026 10:00:00 +0100\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
        From: Bob <bob@example.org>\r\nSender: list@example.org\r\nReply-To: r@example.org\r\n\
        To: Team: a@example.com, \"C, D\" <c@example.com>;\r\nCc: e@example.com\r\n\
        Bcc: f@example.com\r\nIn-Reply-To: <p@example.org>\r\nMessage-ID: <m@example.org>\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
        --b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_string()
        + &"AAECAwQFBgcICQ==\r\n".repeat(4096)
        + "--b--\r\n";
    deliver(&h, &alice, "INBOX", raw, vec![]).await;
    ok(&mut peer, "a1", "SELECT INBOX").await;
    // The ENVELOPE item, to its closing parenthesis (quoted strings skipped).
    let envelope_of = |answer: &[String]| {
        let line = &answer[0];
        let start = line.find("ENVELOPE (").expect("an ENVELOPE");
        let (mut depth, mut quoted, mut escaped) = (0, false, false);
        for (at, c) in line[start..].char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        return line[start..=start + at].to_string();
                    }
                }
                _ => {}
            }
        }
        panic!("an ENVELOPE not closed: {line}");
    };
    // Alone, before any summary was kept; then beside BODYSTRUCTURE, which keeps one; then
    // alone again, from it.
    let alone = envelope_of(&ok(&mut peer, "a2", "FETCH 1 (ENVELOPE)").await);
    assert!(
        alone.contains("\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\"")
            && alone.contains("((NIL NIL \"Team\" NIL)")
            && alone.contains("(\"C, D\" NIL \"c\" \"example.com\")")
            && alone.contains("\"<m@example.org>\""),
        "{alone}"
    );
    let summarised = ok(&mut peer, "a3", "FETCH 1 (ENVELOPE BODYSTRUCTURE)").await;
    assert_eq!(envelope_of(&summarised), alone);
    // The summary kept for ENVELOPE alone holds no structure: the whole one took its place.
    assert!(
        summarised[0].contains(" BODYSTRUCTURE ((\"TEXT\" \"plain\"")
            && summarised[0].contains("(\"application\" \"octet-stream\""),
        "{summarised:?}"
    );
    let body = ok(&mut peer, "a3b", "FETCH 1 (BODY)").await;
    assert!(
        body[0].starts_with("* 1 FETCH (BODY ((\"TEXT\""),
        "{body:?}"
    );
    let again = ok(&mut peer, "a4", "FETCH 1 (ENVELOPE)").await;
    assert_eq!(envelope_of(&again), alone);
}
