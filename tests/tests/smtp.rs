//! The SMTP listener's inbound role over real TCP: delivery into INBOX, and each refusal with
//! its code and nothing stored (unknown users, relaying with every classic trick, size, too
//! many recipients, over-long lines, bare LF or CR: SMTP smuggling).

use pushmail_smtp::SmtpSettings;
use pushmail_tests::Harness;
use pushmail_tests::fixtures::inbox;
use pushmail_tests::smtp::Client;

fn code(reply: &str) -> &str {
    &reply[..reply.len().min(9)]
}

#[tokio::test]
async fn mail_for_a_local_account_lands_in_its_inbox() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = client.command("EHLO sender.example").await;
    for capability in [
        "SIZE",
        "PIPELINING",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(ehlo.contains(capability), "{ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "not offered inbound yet"
    );
    assert!(code(&client.command("MAIL FROM:<bob@sender.example>").await).starts_with("250 2.1.0"));
    assert!(code(&client.command(&format!("RCPT TO:<{alice}>")).await).starts_with("250 2.1.5"));
    assert!(client.command("DATA").await.starts_with("354"));
    client
        .send(b"From: bob@sender.example\r\nSubject: hello\r\n\r\nfirst line\r\n..dot stuffed\r\n.\r\n")
        .await;
    let queued = client.reply().await;
    assert!(queued.starts_with("250 2.0.0"), "{queued}");
    assert!(client.command("QUIT").await.starts_with("221"));

    let messages = h.store.messages(&alice, &inbox(), 0, 10).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].envelope.subject.as_deref(), Some("hello"));
    let raw = h
        .store
        .message_body(&alice, &inbox(), messages[0].uid)
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    // The envelope sender, then the trace.
    assert!(
        raw.starts_with(
            "Return-Path: <bob@sender.example>\r\nReceived: from sender.example (127.0.0.1)"
        ),
        "{raw}"
    );
    assert!(
        raw.ends_with("\r\nfirst line\r\n.dot stuffed\r\n"),
        "{raw:?}"
    );
}

#[tokio::test]
async fn unknown_users_and_relaying_are_refused_with_every_trick() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO relay.test").await;
    client.command("MAIL FROM:<spam@relay.test>").await;
    let domain = &h.domain;
    let cases = [
        (format!("RCPT TO:<nobody@{domain}>"), "550 5.1.1"),
        ("RCPT TO:<victim@elsewhere.example>".to_owned(), "550 5.7.1"),
        (
            format!("RCPT TO:<victim%elsewhere.example@{domain}>"),
            "550 5.1.1",
        ),
        (
            format!("RCPT TO:<@{domain}:victim@elsewhere.example>"),
            "550 5.7.1",
        ),
        (
            format!("RCPT TO:<\"victim@elsewhere.example\"@{domain}>"),
            "550 5.1.1",
        ),
        (
            format!("RCPT TO:<victim@elsewhere.example@{domain}>"),
            "550 5.1.1",
        ),
        (
            format!("RCPT TO:<victim!elsewhere.example@{domain}>"),
            "550 5.1.1",
        ),
    ];
    for (command, expected) in cases {
        let reply = client.command(&command).await;
        assert!(
            reply.starts_with(expected) || reply.starts_with("501"),
            "{command}: {reply}"
        );
        assert!(!reply.starts_with("250"), "{command}: {reply}");
    }
    // With no recipient accepted, DATA is refused, and nothing was stored anywhere.
    assert!(client.command("DATA").await.starts_with("554 5.5.1"));
    assert!(
        h.store
            .messages(&alice, &inbox(), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Commands out of order.
    let (mut fresh, _) = Client::connect(smtp).await;
    assert!(
        fresh
            .command("MAIL FROM:<a@b.example>")
            .await
            .starts_with("503")
    );
    fresh.command("HELO x").await;
    assert!(
        fresh
            .command(&format!("RCPT TO:<{alice}>"))
            .await
            .starts_with("503")
    );
}

#[tokio::test]
async fn smuggling_long_lines_size_and_recipient_limits_store_nothing() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h
        .smtp(SmtpSettings {
            max_message_bytes: 2000,
            max_recipients: 2,
            ..SmtpSettings::default()
        })
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO x.example").await;

    // A bare LF then ".\r\n" does not end DATA (that is the smuggling trick): the real end is
    // CRLF.CRLF, and the message with a bare LF is refused whole, the "smuggled" one with it.
    let refused = client
        .transaction(
            "a@x.example",
            alice.as_str(),
            b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<x@y>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n",
        )
        .await;
    assert!(refused.starts_with("550 5.6.0"), "{refused}");
    // A bare CR inside a line, too.
    let refused = client
        .transaction(
            "a@x.example",
            alice.as_str(),
            b"Subject: cr\r\n\r\nhalf\rline\r\n.\r\n",
        )
        .await;
    assert!(refused.starts_with("550 5.6.0"), "{refused}");
    // A text line over 1,000 octets.
    let mut long = b"Subject: long\r\n\r\n".to_vec();
    long.extend(std::iter::repeat_n(b'x', 1200));
    long.extend_from_slice(b"\r\n.\r\n");
    let refused = client
        .transaction("a@x.example", alice.as_str(), &long)
        .await;
    assert!(refused.starts_with("550 5.5.2"), "{refused}");
    // Over the size announced, and over the size sent.
    assert!(
        client
            .command("MAIL FROM:<a@x.example> SIZE=5000")
            .await
            .starts_with("552 5.3.4")
    );
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..40 {
        big.extend(std::iter::repeat_n(b'y', 100));
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    let refused = client
        .transaction("a@x.example", alice.as_str(), &big)
        .await;
    assert!(refused.starts_with("552 5.3.4"), "{refused}");
    // More recipients than allowed.
    let bob = h.account("bob").await;
    let carol = h.account("carol").await;
    client.command("MAIL FROM:<a@x.example>").await;
    for rcpt in [&alice, &bob] {
        assert!(
            client
                .command(&format!("RCPT TO:<{rcpt}>"))
                .await
                .starts_with("250")
        );
    }
    assert!(
        client
            .command(&format!("RCPT TO:<{carol}>"))
            .await
            .starts_with("452 4.5.3")
    );
    client.command("RSET").await;
    // A command line over 512 octets.
    let reply = client.command(&format!("NOOP {}", "z".repeat(600))).await;
    assert!(reply.starts_with("500 5.5.2"), "{reply}");

    for account in [&alice, &bob, &carol] {
        assert!(
            h.store
                .messages(account, &inbox(), 0, 10)
                .await
                .unwrap()
                .is_empty(),
            "nothing stored for {account}"
        );
    }
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO p.example").await;
    client
        .send(
            format!(
                "MAIL FROM:<p@p.example>\r\nRCPT TO:<{alice}>\r\nRCPT TO:<nobody@{}>\r\nDATA\r\n",
                h.domain
            )
            .as_bytes(),
        )
        .await;
    assert!(client.reply().await.starts_with("250 2.1.0"));
    assert!(client.reply().await.starts_with("250 2.1.5"));
    assert!(client.reply().await.starts_with("550 5.1.1"));
    assert!(client.reply().await.starts_with("354"));
    client
        .send(b"Subject: piped\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .await;
    assert!(client.reply().await.starts_with("250 2.0.0"));
    assert!(client.reply().await.starts_with("221"));
    assert_eq!(
        h.store
            .messages(&alice, &inbox(), 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn delivered_mail_is_listed_by_the_admin_api() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO a.example").await;
    for i in 1..=3 {
        let data = format!("From: Bob <bob@a.example>\r\nSubject: note {i}\r\n\r\nhi\r\n.\r\n");
        let queued = client
            .transaction("bob@a.example", alice.as_str(), data.as_bytes())
            .await;
        assert!(queued.starts_with("250"), "{queued}");
    }
    let folders = h
        .admin_as_server("GET", &format!("/admin/accounts/{alice}/folders"), None)
        .await;
    assert_eq!(folders.status, 200, "{:?}", folders.body);
    let inbox = folders.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(
        (inbox["messages"].as_u64(), inbox["uid_next"].as_u64()),
        (Some(3), Some(4))
    );
    let path = format!("/admin/accounts/{alice}/folders/INBOX/messages?limit=2");
    let first = h.admin_as_server("GET", &path, None).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["items"][0]["subject"], "note 1");
    assert_eq!(first.body["items"][0]["from"], "bob@a.example");
    let cursor = first.body["cursor"].as_str().unwrap().to_owned();
    let rest = h
        .admin_as_server("GET", &format!("{path}&cursor={cursor}"), None)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["items"][0]["uid"], 3);
    assert!(rest.body["cursor"].is_null());
    let missing = h
        .admin_as_server(
            "GET",
            &format!("/admin/accounts/{alice}/folders/Nowhere/messages"),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    let bad = h
        .admin_as_server(
            "GET",
            &format!("/admin/accounts/{alice}/folders/..%2Fx/messages"),
            None,
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_full_mailbox_refuses_with_552_5_2_2_and_stores_nothing() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let path = format!("/admin/accounts/{alice}");
    let bad = h
        .admin_as_server("PATCH", &path, Some(serde_json::json!({"quota_bytes": 0})))
        .await;
    assert_eq!(bad.status, 400);
    let set = h
        .admin_as_server(
            "PATCH",
            &path,
            Some(serde_json::json!({"quota_bytes": 600})),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["quota_bytes"], 600);
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO q.example").await;
    let mut replies = Vec::new();
    for i in 0..3 {
        let body = format!("Subject: q{i}\r\n\r\n{}\r\n.\r\n", "z".repeat(200));
        replies.push(
            client
                .transaction("q@q.example", alice.as_str(), body.as_bytes())
                .await,
        );
    }
    // Each message takes ~330 octets with its Received header: the first fits, the next not.
    assert!(replies[0].starts_with("250"), "{replies:?}");
    assert!(replies[1].starts_with("552 5.2.2"), "{replies:?}");
    assert!(replies[2].starts_with("552 5.2.2"), "{replies:?}");
    assert_eq!(
        h.store
            .messages(&alice, &inbox(), 0, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // The quota lifted, mail comes in again.
    let lifted = h
        .admin_as_server(
            "PATCH",
            &path,
            Some(serde_json::json!({"quota_bytes": null})),
        )
        .await;
    assert!(lifted.body["quota_bytes"].is_null());
    let queued = client
        .transaction(
            "q@q.example",
            alice.as_str(),
            b"Subject: after\r\n\r\nx\r\n.\r\n",
        )
        .await;
    assert!(queued.starts_with("250"), "{queued}");
}

/// Reads until the server closes the connection; what it said meanwhile.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut said = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut said),
    )
    .await;
    assert!(
        read.is_ok(),
        "still open; so far: {}",
        String::from_utf8_lossy(&said)
    );
    String::from_utf8_lossy(&said).into_owned()
}

#[tokio::test]
async fn silent_and_endless_sessions_are_ended() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start().await;
    let settings = SmtpSettings {
        idle_timeout: std::time::Duration::from_millis(300),
        ..SmtpSettings::default()
    };
    let limits = pushmail_listener::Limits {
        session_timeout: std::time::Duration::from_millis(1500),
        ..pushmail_listener::Limits::default()
    };
    let smtp = h
        .listen_smtp_with(
            pushmail_smtp::Smtp::inbound(h.store.clone(), settings),
            limits,
        )
        .await;
    // Silent after EHLO: told 421 and closed.
    let mut silent = tokio::net::TcpStream::connect(smtp).await.unwrap();
    silent.write_all(b"EHLO quiet.test\r\n").await.unwrap();
    let said = until_closed(&mut silent).await;
    assert!(said.contains("421 4.4.2"), "{said}");
    // Silent in the middle of DATA: closed too.
    let mut stalled = tokio::net::TcpStream::connect(smtp).await.unwrap();
    stalled
        .write_all(
            b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@nowhere.test>\r\nDATA\r\nSubject: half",
        )
        .await
        .unwrap();
    until_closed(&mut stalled).await;
    // Busy but endless (a NOOP every 100 ms): ended by the session limit.
    let mut busy = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let started = std::time::Instant::now();
    let ended = loop {
        if busy.write_all(b"NOOP\r\n").await.is_err() {
            break started.elapsed();
        }
        let mut buffer = [0u8; 512];
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(
            std::time::Duration::from_millis(100),
            busy.read(&mut buffer),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            _ => {}
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never ended"
        );
    };
    assert!(
        ended >= std::time::Duration::from_millis(1400),
        "ended early: {ended:?}"
    );
}

#[tokio::test]
async fn connections_are_capped_per_source_and_in_all() {
    use tokio::io::AsyncReadExt;
    let h = Harness::start().await;
    let limits = pushmail_listener::Limits {
        max_connections: 4,
        max_connections_per_source: 2,
        ..pushmail_listener::Limits::default()
    };
    let smtp = h
        .listen_smtp_with(
            pushmail_smtp::Smtp::inbound(h.store.clone(), SmtpSettings::default()),
            limits,
        )
        .await;
    let (first, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220"));
    let (_second, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220"));
    // A third from the same address: told 421 and closed.
    let mut third = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let said = until_closed(&mut third).await;
    assert!(said.starts_with("421 4.7.0"), "{said}");
    // Once one closes, the address may connect again.
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_again, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220"), "{greeting}");

    // From other loopback addresses, up to 4 sessions in all; a fifth waits unanswered.
    let from = |ip: &str| {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        socket
    };
    let mut others = Vec::new();
    for ip in ["127.0.0.2", "127.0.0.3"] {
        let mut stream = from(ip).connect(smtp).await.unwrap();
        let mut greeting = [0u8; 3];
        stream.read_exact(&mut greeting).await.unwrap();
        assert_eq!(&greeting, b"220");
        others.push(stream);
    }
    let mut waiting = from("127.0.0.4").connect(smtp).await.unwrap();
    let mut greeting = [0u8; 3];
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        waiting.read_exact(&mut greeting),
    )
    .await;
    assert!(early.is_err(), "a fifth session was greeted");
    others.pop();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        waiting.read_exact(&mut greeting),
    )
    .await
    .expect("greeted once a place is free")
    .unwrap();
    assert_eq!(&greeting, b"220");
}
