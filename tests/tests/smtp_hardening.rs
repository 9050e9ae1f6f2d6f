//! SMTP as an attacker tries it: every end-of-data variant of the public smuggling scanners
//! (hannob's smtpsmug, The-Login's SMTP-Smuggling-Tools) with and without an over-long line
//! before it; a 250 never hides a recipient that did not get the message; a relayed copy for
//! several recipients names none of them; mail in flight for a deleted account reaches no one
//! who takes the address later.

use std::time::Duration;

use pushmail_smtp::SmtpSettings;
use pushmail_tests::Harness;
use pushmail_tests::smtp::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The endings the scanners try in place of `<CRLF>.<CRLF>`.
const ENDINGS: &[&[u8]] = &[
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n.\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
    b"\n..\n",
    b"\r\n..\r\n.\n",
];

/// The whole conversation in one write, as a smuggler pipelines it; every reply until close.
async fn conversation(address: std::net::SocketAddr, alice: &str, data: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut sent =
        format!("EHLO x.example\r\nMAIL FROM:<bob@x.example>\r\nRCPT TO:<{alice}>\r\nDATA\r\n")
            .into_bytes();
    // The client waits for 354 before the message, as a real one does.
    stream.write_all(&sent).await.unwrap();
    let mut replies = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&replies).contains("354") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("a reply")
            .unwrap();
        assert!(n > 0, "closed before 354");
        replies.extend_from_slice(&buffer[..n]);
    }
    sent.clear();
    sent.extend_from_slice(data);
    sent.extend_from_slice(b"QUIT\r\n");
    stream.write_all(&sent).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => replies.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&replies).into_owned()
}

#[tokio::test]
async fn no_smuggling_ending_starts_a_second_message_even_after_an_over_long_line() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let long_line = vec![b'x'; 1001];
    for ending in ENDINGS {
        for before in [&b""[..], &long_line] {
            let mut data = b"From: bob@x.example\r\nSubject: cover\r\n\r\nhello\r\n".to_vec();
            data.extend_from_slice(before);
            data.extend_from_slice(ending);
            data.extend_from_slice(
                format!(
                    "MAIL FROM:<ceo@{}>\r\nRCPT TO:<{alice}>\r\nDATA\r\nFrom: ceo@{}\r\nSubject: smuggled\r\n\r\nforged\r\n\r\n.\r\n",
                    h.domain, h.domain
                )
                .as_bytes(),
            );
            let replies = conversation(smtp, alice.as_str(), &data).await;
            assert_eq!(
                replies.matches("354 ").count(),
                1,
                "one DATA only, for {ending:?} after {} octets: {replies}",
                before.len()
            );
        }
    }
    let inbox = h.stored_messages(&alice, "INBOX").await;
    for (meta, _) in &inbox {
        assert_ne!(meta.envelope.subject.as_deref(), Some("smuggled"));
    }
}

#[tokio::test]
async fn a_mailbox_that_cannot_take_the_message_is_refused_at_rcpt_or_for_everyone() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.quota_bytes = Some(600);
    h.store.put_account(&account).await.unwrap();
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO q.example").await;

    // The size announced is more than alice has left: she is refused at RCPT, bob gets it.
    assert!(
        client
            .command("MAIL FROM:<q@q.example> SIZE=1000")
            .await
            .starts_with("250")
    );
    let refused = client.command(&format!("RCPT TO:<{alice}>")).await;
    assert!(refused.starts_with("552 5.2.2"), "{refused}");
    assert!(
        client
            .command(&format!("RCPT TO:<{bob}>"))
            .await
            .starts_with("250")
    );
    assert!(client.command("DATA").await.starts_with("354"));
    client
        .send(format!("Subject: big\r\n\r\n{}\r\n.\r\n", "z".repeat(900)).as_bytes())
        .await;
    let answer = client.reply().await;
    assert!(answer.starts_with("250"), "{answer}");
    assert_eq!(h.stored_messages(&bob, "INBOX").await.len(), 1);

    // No size announced: both accepted at RCPT; the message turns out too big for alice, so
    // nobody gets it and the sender is told (no 250 that leaves alice out).
    client
        .start_data("q@q.example", &[alice.as_str(), bob.as_str()])
        .await;
    client
        .send(format!("Subject: big2\r\n\r\n{}\r\n.\r\n", "z".repeat(900)).as_bytes())
        .await;
    let answer = client.reply().await;
    assert!(answer.starts_with("552 5.2.2"), "{answer}");
    assert!(answer.contains(alice.as_str()), "{answer}");
    assert!(h.stored_messages(&alice, "INBOX").await.is_empty());
    assert_eq!(
        h.stored_messages(&bob, "INBOX").await.len(),
        1,
        "bob did not get it either"
    );
}

#[tokio::test]
async fn mail_for_a_deleted_account_reaches_no_one_who_takes_the_address_later() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    pushmail_tests::imap::deliver(
        &h,
        &alice,
        "INBOX",
        &b"Subject: old\r\n\r\nsecret\r\n"[..],
        Vec::new(),
    )
    .await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO x.example").await;
    // RCPT while the old account exists...
    client.start_data("bob@x.example", &[alice.as_str()]).await;
    // ...then the account is deleted and the address created anew before DATA ends.
    let deleted = h
        .admin_as_server("DELETE", &format!("/admin/accounts/{alice}"), None)
        .await;
    assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    let again = h.account("alice").await;
    assert_eq!(again, alice);
    client
        .send(b"Subject: for the old owner\r\n\r\nx\r\n.\r\n")
        .await;
    let answer = client.reply().await;
    assert!(!answer.starts_with("250"), "{answer}");
    // The new owner starts empty: neither the old mail nor the one in flight.
    assert!(h.stored_messages(&alice, "INBOX").await.is_empty());
    let folders = h.store.folders(&alice).await.unwrap();
    assert!(folders.iter().all(|f| f.messages == 0), "{folders:?}");
    assert_eq!(h.store.mailbox_usage(&alice).await.unwrap(), 0);
}

#[tokio::test]
async fn one_relayed_copy_for_several_recipients_names_none_of_them() {
    use base64::Engine;
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = pushmail_tests::smtp::Sink::start().await;
    let outgoing = sink.relay(h.store.clone(), pushmail_smtp::RelayPolicy::default());
    let settings = SmtpSettings {
        plaintext_auth_on_loopback: true,
        ..SmtpSettings::default()
    };
    let smtp = pushmail_smtp::Smtp::submission(h.store.clone(), settings, Some(outgoing.clone()));
    let address = h.listen_smtp(smtp).await;
    let (mut client, _) = Client::connect(address).await;
    client.command("EHLO device.test").await;
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{alice}\0{}", pushmail_tests::PASSWORD));
    let ok = client.command(&format!("AUTH PLAIN {credentials}")).await;
    assert!(ok.starts_with("235"), "{ok}");
    for (recipients, names) in [
        (
            &["to@remote.example", "secret-bcc@remote.example"][..],
            false,
        ),
        (&["only@remote.example"][..], true),
    ] {
        client.start_data(alice.as_str(), recipients).await;
        client
            .send(b"To: to@remote.example\r\nSubject: hi\r\n\r\nx\r\n.\r\n")
            .await;
        let answer = client.reply().await;
        assert!(answer.starts_with("250"), "{answer}");
        outgoing.work(chrono::Utc::now()).await.unwrap();
        let relayed = sink.received().pop().expect("relayed");
        let text = String::from_utf8_lossy(&relayed.data).into_owned();
        assert_eq!(text.contains("for <"), names, "{text}");
        assert!(!text.contains("secret-bcc"), "{text}");
    }
}

#[tokio::test]
async fn messages_of_too_many_header_fields_or_parts_are_refused_and_the_rest_filed_in_linear_time()
{
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // Any rule makes the header be read for filing.
    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.filing_rules = serde_json::from_value(serde_json::json!([{
        "conditions": [{"field": "subject", "match": "contains", "value": "never"}],
        "file_into": "Never",
    }]))
    .unwrap();
    h.store.put_account(&account).await.unwrap();
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO x.example").await;
    let limit = pushmail_core::message::MAX_HEADER_FIELDS;
    for (fields, taken) in [(limit * 10, false), (limit - 10, true)] {
        let mut data = String::new();
        for n in 0..fields {
            data.push_str(&format!("X-Field-{n}: {n}\r\n"));
        }
        data.push_str("Subject: fields\r\n\r\nbody\r\n.\r\n");
        let answer = client
            .transaction("bob@x.example", alice.as_str(), data.as_bytes())
            .await;
        assert_eq!(answer.starts_with("250"), taken, "{fields}: {answer}");
        if !taken {
            assert!(answer.starts_with("552 5.3.4"), "{answer}");
        }
    }
    let mut parts = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
    for _ in 0..pushmail_core::message::MAX_MIME_PARTS + 1 {
        parts.push_str("--b\r\n\r\nx\r\n");
    }
    parts.push_str("--b--\r\n.\r\n");
    let answer = client
        .transaction("bob@x.example", alice.as_str(), parts.as_bytes())
        .await;
    assert!(answer.starts_with("552 5.3.4"), "{answer}");
    assert_eq!(h.stored_messages(&alice, "INBOX").await.len(), 1);
}

#[tokio::test]
async fn an_upstream_relay_reconnecting_at_once_at_its_cap_is_never_told_421() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // At the cap exactly: each client opens its next connection the moment it reads 221, as
    // Postfix's smtp-source does (a new connection per message).
    let cap = 8;
    let limits = pushmail_listener::Limits {
        max_connections_per_source: cap,
        ..pushmail_listener::Limits::default()
    };
    let smtp = h
        .listen_smtp_with(
            pushmail_smtp::Smtp::inbound(h.store.clone(), SmtpSettings::default()),
            limits,
        )
        .await;
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..cap {
        let alice = alice.clone();
        clients.spawn(async move {
            for m in 0..10 {
                let (mut client, greeting) = Client::connect(smtp).await;
                assert!(greeting.starts_with("220"), "{n}/{m}: {greeting}");
                client.command("EHLO relay.example").await;
                let body = format!("Subject: {n}-{m}\r\n\r\nx\r\n.\r\n");
                let answer = client
                    .transaction("bob@x.example", alice.as_str(), body.as_bytes())
                    .await;
                assert!(answer.starts_with("250"), "{answer}");
                assert!(client.command("QUIT").await.starts_with("221"));
            }
        });
    }
    clients.join_all().await;
    assert_eq!(h.stored_messages(&alice, "INBOX").await.len(), cap * 10);
}

#[tokio::test]
async fn postmaster_is_taken_bare_and_at_every_local_domain_for_the_chosen_account() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h
        .smtp(SmtpSettings {
            postmaster: Some(alice.clone()),
            ..SmtpSettings::default()
        })
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO x.example").await;
    for to in ["postmaster".to_owned(), format!("PostMaster@{}", h.domain)] {
        let answer = client
            .transaction(
                "bob@x.example",
                &to,
                b"Subject: to postmaster\r\n\r\nx\r\n.\r\n",
            )
            .await;
        assert!(answer.starts_with("250"), "{to}: {answer}");
    }
    assert_eq!(h.stored_messages(&alice, "INBOX").await.len(), 2);
    // Elsewhere it is relaying, as any other address.
    client.command("MAIL FROM:<bob@x.example>").await;
    let relayed = client
        .command("RCPT TO:<postmaster@elsewhere.example>")
        .await;
    assert!(relayed.starts_with("550 5.7.1"), "{relayed}");
}
