//! IDLE over real TCP: woken by a delivery in this process (hint) and by one from another
//! process (change log only), many idlers at once, the poll kept while other accounts' hints
//! keep coming, the keepalive and the end of an IDLE that lasts too long.

use pushmail_core::hints::Arrivals;
use std::time::Duration;

use pushmail_imap::ImapSettings;
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_tests::imap::{Peer, deliver, last, listener, loopback_plaintext, until};
use pushmail_tests::smtp::Client;
use pushmail_tests::{Harness, PASSWORD};
use tokio::io::AsyncWriteExt;

/// A session of `account`'s idling on its INBOX.
async fn idler(address: std::net::SocketAddr, account: String) -> Peer {
    let (mut peer, _) = Peer::connect(address).await;
    let login = peer
        .command("i1", &format!("LOGIN {account} \"{PASSWORD}\""))
        .await;
    assert!(last(&login).starts_with("i1 OK"), "{login:?}");
    peer.command("i2", "SELECT INBOX").await;
    peer.writer.write_all(b"i3 IDLE\r\n").await.unwrap();
    assert!(peer.line().await.starts_with("+ "));
    peer
}

#[tokio::test]
async fn idle_wakes_for_mail_from_this_process_and_from_another() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, hints) = listener(&h, loopback_plaintext()).await;
    let smtp = h
        .listen_smtp(
            Smtp::inbound(h.store.clone(), SmtpSettings::default())
                .with_arrivals(Arrivals::default().hinting(hints)),
        )
        .await;
    let (mut peer, _) = Peer::connect(address).await;
    peer.command("c1", &format!("LOGIN {alice} \"{PASSWORD}\""))
        .await;
    let select = peer.command("c2", "SELECT INBOX").await;
    assert!(select.join("").contains("* 0 EXISTS"), "{select:?}");
    peer.writer.write_all(b"c3 IDLE\r\n").await.unwrap();
    assert!(peer.line().await.starts_with("+ "));

    // Through this process's SMTP listener: the hint wakes the idler at once.
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO sender.example").await;
    let answer = client
        .transaction(
            "bob@example.org",
            alice.as_str(),
            b"Subject: hinted\r\n\r\nx\r\n.\r\n",
        )
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    let hinted = until(&mut peer, "* 1 EXISTS").await;
    // Stored by another process on the same table: no hint here, the change log tells.
    deliver(
        &h,
        &alice,
        "INBOX",
        b"Subject: elsewhere\r\n\r\nx\r\n".to_vec(),
        vec![],
    )
    .await;
    let polled = until(&mut peer, "* 2 EXISTS").await;
    assert!(
        polled < Duration::from_secs(2),
        "the change log was read after {polled:?}"
    );
    eprintln!("EXISTS after a hinted delivery: {hinted:?}; after another process's: {polled:?}");
    peer.writer.write_all(b"DONE\r\n").await.unwrap();
    // `* 2 RECENT` (this session is the first told) may still come before the tagged OK.
    until(&mut peer, "c3 OK").await;
    let fetch = peer.command("c4", "FETCH 2 (UID)").await;
    assert!(fetch[0].starts_with("* 2 FETCH (UID 2)"), "{fetch:?}");
}

#[tokio::test]
async fn one_delivery_wakes_every_session_idling_on_the_folder() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // The change log is looked at only once a minute here: only the hint can wake them in time.
    let settings = ImapSettings {
        idle_poll: Duration::from_secs(60),
        ..loopback_plaintext()
    };
    let (address, hints) = listener(&h, settings).await;
    // Sixteen of one account (within its session limit), logged in one after another: the
    // password checks running at once are bounded.
    let sessions = 16;
    let mut peers = Vec::new();
    for _ in 0..sessions {
        peers.push(idler(address, alice.to_string()).await);
    }
    deliver(
        &h,
        &alice,
        "INBOX",
        b"Subject: all\r\n\r\nx\r\n".to_vec(),
        vec![],
    )
    .await;
    hints.changed(&alice);
    let mut woken = tokio::task::JoinSet::new();
    for mut peer in peers {
        woken.spawn(async move { until(&mut peer, "* 1 EXISTS").await });
    }
    // Each is woken by the hint, long before its look at the change log.
    let slowest = woken.join_all().await.into_iter().max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(3),
        "an idler heard of the delivery only after {slowest:?}"
    );
}

#[tokio::test]
async fn other_accounts_hints_do_not_put_off_the_look_at_the_change_log() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let settings = ImapSettings {
        idle_poll: Duration::from_millis(300),
        ..loopback_plaintext()
    };
    let (address, hints) = listener(&h, settings).await;
    let mut peer = idler(address, alice.to_string()).await;
    // Bob's mail keeps coming, more often than alice's session looks.
    let busy = tokio::spawn(async move {
        loop {
            hints.changed(&bob);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Stored by another process: no hint for alice, only her session's own look tells.
    deliver(
        &h,
        &alice,
        "INBOX",
        b"Subject: quiet\r\n\r\nx\r\n".to_vec(),
        vec![],
    )
    .await;
    until(&mut peer, "* 1 EXISTS").await;
    busy.abort();
}

#[tokio::test]
async fn an_idle_is_kept_alive_and_ends_when_it_lasts_too_long() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let settings = ImapSettings {
        keepalive: Duration::from_millis(200),
        idle_max: Duration::from_millis(900),
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;
    let mut peer = idler(address, alice.to_string()).await;
    until(&mut peer, "* OK Still here").await;
    until(&mut peer, "* BYE IDLE for too long").await;
    let mut rest = String::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncBufReadExt::read_line(&mut peer.reader, &mut rest),
    )
    .await
    .expect("closed after BYE");
    assert_eq!(closed.unwrap(), 0, "nothing after BYE: {rest}");
}
