//! LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819) over real TCP: several patterns, the
//! SUBSCRIBED selection with a subscription that outlived its folder (`\NonExistent`), CHILDINFO
//! under RECURSIVEMATCH, SPECIAL-USE selection, STATUS after each folder, and the refusals.

use pushmail_tests::Harness;
use pushmail_tests::imap::{deliver, last, listener, logged_in, loopback_plaintext};

fn untagged(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.starts_with("* "))
        .map(|l| l.trim_end())
        .collect()
}

#[tokio::test]
async fn extended_list_selects_and_returns_what_it_is_asked() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    deliver(&h, &alice, "INBOX", "Subject: 1\r\n\r\n1\r\n", vec![]).await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut peer = logged_in(address, alice.as_str()).await;
    let capabilities = peer.command("c", "CAPABILITY").await.join("");
    assert!(capabilities.contains("LIST-EXTENDED") && capabilities.contains("LIST-STATUS"));
    for (tag, command) in [
        ("c1", "CREATE Lists/rust"),
        ("c2", "CREATE Lists/go"),
        ("c3", "CREATE Gone"),
        ("s1", "SUBSCRIBE Lists/rust"),
        ("s2", "SUBSCRIBE Gone"),
        ("u1", "UNSUBSCRIBE Lists"),
        ("d1", "DELETE Gone"),
    ] {
        let lines = peer.command(tag, command).await;
        assert!(
            last(&lines).starts_with(&format!("{tag} OK")),
            "{command}: {lines:?}"
        );
    }

    // Several patterns at once.
    let lines = peer.command("l1", "LIST \"\" (Lists/r* Drafts)").await;
    assert_eq!(
        untagged(&lines),
        [
            "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts",
            "* LIST (\\HasNoChildren) \"/\" Lists/rust",
        ]
    );
    // SUBSCRIBED: the subscription that outlived its folder too; a RECURSIVEMATCH parent.
    let lines = peer
        .command("l2", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (Gone Lists)")
        .await;
    assert_eq!(
        untagged(&lines),
        [
            "* LIST (\\NonExistent \\Subscribed) \"/\" Gone",
            "* LIST (\\HasChildren) \"/\" Lists (\"CHILDINFO\" (\"SUBSCRIBED\"))",
        ],
        "{lines:?}"
    );
    // The same names told as subscribed or not, and an STATUS after each folder.
    let lines = peer
        .command(
            "l3",
            "LIST \"\" (INBOX Lists/%) RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))",
        )
        .await;
    assert_eq!(
        untagged(&lines),
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* STATUS INBOX (MESSAGES 1 UIDNEXT 2)",
            "* LIST (\\HasNoChildren) \"/\" Lists/go",
            "* STATUS Lists/go (MESSAGES 0 UIDNEXT 1)",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Lists/rust",
            "* STATUS Lists/rust (MESSAGES 0 UIDNEXT 1)",
        ],
        "{lines:?}"
    );
    // SPECIAL-USE selection.
    let lines = peer.command("l4", "LIST (SPECIAL-USE) \"\" *").await;
    assert_eq!(untagged(&lines).len(), 4, "{lines:?}");
    // LSUB lists the kept subscription, not selectable.
    let lines = peer.command("l5", "LSUB \"\" Gone").await;
    assert_eq!(untagged(&lines), ["* LSUB (\\Noselect) \"/\" Gone"]);
    // Created again: subscribed still (CREATE does not unsubscribe).
    peer.command("c4", "CREATE Gone").await;
    let lines = peer.command("l6", "LSUB \"\" Gone").await;
    assert_eq!(untagged(&lines), ["* LSUB () \"/\" Gone"]);

    for (tag, bad) in [
        ("b1", "LIST (RECURSIVEMATCH) \"\" *"),
        ("b2", "LIST (BOGUS) \"\" *"),
        ("b3", "LIST \"\" * RETURN (BOGUS)"),
        ("b4", "LIST \"\" * RETURN (STATUS (SIZE-OF-NOTHING))"),
        ("b5", "LIST \"\" ()"),
    ] {
        let lines = peer.command(tag, bad).await;
        assert!(
            last(&lines).starts_with(&format!("{tag} BAD")),
            "{bad}: {lines:?}"
        );
        assert_eq!(lines.len(), 1, "nothing listed: {lines:?}");
    }
}
