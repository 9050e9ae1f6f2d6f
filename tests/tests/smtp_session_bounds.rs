//! What one SMTP session may make the server spend, tried as a harvester, a smuggler and a
//! silent client would: error limits, RCPT counted with repeats, bytes sent before 354, BDAT
//! and bare LFs closing the session, silence inside AUTH and before MAIL, the header From of
//! device mail, NUL octets, AUTH PLAIN's long initial response, and the memory messages held at
//! once may take.

use std::time::{Duration, Instant};

use base64::Engine;
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_tests::smtp::Client;
use pushmail_tests::{Harness, PASSWORD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Everything the server says until it closes (or 10 s pass).
async fn until_closed(stream: &mut tokio::net::TcpStream) -> (String, bool) {
    let mut said = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&said).into(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&said).into(), true),
            Ok(Ok(n)) => said.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn a_directory_harvest_is_slowed_then_closed() {
    let h = Harness::start().await;
    h.account("alice").await;
    let settings = SmtpSettings {
        soft_error_limit: 2,
        hard_error_limit: 5,
        ..SmtpSettings::default()
    };
    let smtp = h.smtp(settings).await;
    let mut stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let mut guesses = String::from("EHLO h.example\r\nMAIL FROM:<h@h.example>\r\n");
    for n in 0..1_000 {
        guesses.push_str(&format!("RCPT TO:<guess{n}@{}>\r\n", h.domain));
    }
    let started = Instant::now();
    stream.write_all(guesses.as_bytes()).await.unwrap();
    let (said, closed) = until_closed(&mut stream).await;
    assert!(closed, "{said}");
    assert_eq!(said.matches("550 5.1.1").count(), 5, "{said}");
    assert!(
        said.ends_with("421 4.7.0 Too many errors; closing\r\n"),
        "{said}"
    );
    // Errors past the soft limit came a second apart.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Lines refused before they are commands (unknown, malformed, too long) count alike.
    let mut stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let mut junk = String::from("EHLO h.example\r\n");
    let long = format!("NOOP {}\r\n", "a".repeat(600));
    for n in 0..100 {
        junk.push_str(match n % 3 {
            0 => "XYZZY\r\n",
            1 => "MAIL FROM:<<<\r\n",
            _ => &long,
        });
    }
    stream.write_all(junk.as_bytes()).await.unwrap();
    let (said, closed) = until_closed(&mut stream).await;
    assert!(closed, "{said}");
    assert!(
        said.ends_with("421 4.7.0 Too many errors; closing\r\n"),
        "{said}"
    );
}

#[tokio::test]
async fn repeated_rcpts_count_against_the_recipient_limit() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h
        .smtp(SmtpSettings {
            max_recipients: 3,
            ..SmtpSettings::default()
        })
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO r.example").await;
    client.command("MAIL FROM:<r@r.example>").await;
    for _ in 0..3 {
        assert!(
            client
                .command(&format!("RCPT TO:<{alice}>"))
                .await
                .starts_with("250")
        );
    }
    let fourth = client.command(&format!("RCPT TO:<{alice}>")).await;
    assert!(fourth.starts_with("452 4.5.3"), "{fourth}");
}

#[tokio::test]
async fn bytes_before_354_bdat_and_bare_lf_commands_close_the_session_and_store_nothing() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let pipelined = format!(
        "EHLO p.example\r\nMAIL FROM:<p@p.example>\r\nRCPT TO:<{alice}>\r\nDATA\r\n\
         Subject: early\r\n\r\nx\r\n.\r\nMAIL FROM:<p@p.example>\r\n"
    );
    let bdat = format!(
        "EHLO p.example\r\nMAIL FROM:<p@p.example>\r\nRCPT TO:<{alice}>\r\nBDAT 40 LAST\r\n\
         MAIL FROM:<x@x.example>\r\nRCPT TO:<{alice}>\r\n"
    );
    let bare = "EHLO p.example\r\nNOOP\nMAIL FROM:<x@x.example>\r\n".to_owned();
    for (conversation, last) in [
        (pipelined, "554 5.5.0"),
        (bdat, "503 5.5.1 BDAT"),
        (bare, "500 5.5.2"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
        stream.write_all(conversation.as_bytes()).await.unwrap();
        let (said, closed) = until_closed(&mut stream).await;
        assert!(closed, "{said}");
        let final_line = said.lines().last().unwrap_or_default();
        assert!(final_line.starts_with(last), "{said}");
        assert!(!said.contains("354 End"), "{said}");
    }
    assert!(h.stored_messages(&alice, "INBOX").await.is_empty());
}

#[tokio::test]
async fn silence_inside_auth_or_before_mail_ends_the_session() {
    let h = Harness::start().await;
    h.account("alice").await;
    let settings = SmtpSettings {
        idle_before_mail: Duration::from_secs(1),
        plaintext_auth_on_loopback: true,
        ..SmtpSettings::default()
    };
    let smtp = h
        .listen_smtp(Smtp::submission(h.store.clone(), settings, None))
        .await;
    for opening in ["EHLO s.example\r\nAUTH LOGIN\r\n", "EHLO s.example\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
        stream.write_all(opening.as_bytes()).await.unwrap();
        let started = Instant::now();
        let (said, closed) = until_closed(&mut stream).await;
        assert!(closed, "{opening:?}: {said}");
        assert!(started.elapsed() < Duration::from_secs(5), "{opening:?}");
    }
}

#[tokio::test]
async fn device_mail_must_come_from_its_account_and_carry_no_nul() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let settings = SmtpSettings {
        plaintext_auth_on_loopback: true,
        ..SmtpSettings::default()
    };
    let smtp = h
        .listen_smtp(Smtp::submission(h.store.clone(), settings, None))
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO d.example").await;
    // AUTH PLAIN with a long initial response (RFC 4954 allows 12,288 octets): a long
    // authorization identity is refused as a login, not as a line too long.
    let long = base64::engine::general_purpose::STANDARD
        .encode(format!("{}\0{alice}\0{PASSWORD}", "z".repeat(600)));
    let answer = client.command(&format!("AUTH PLAIN {long}")).await;
    assert!(!answer.starts_with("500"), "{answer}");
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("\0{alice}\0{PASSWORD}"));
    assert!(
        client
            .command(&format!("AUTH PLAIN {plain}"))
            .await
            .starts_with("235")
    );
    let forged = format!("From: Bob <{bob}>\r\nSubject: forged\r\n\r\nx\r\n.\r\n");
    let refused = client
        .transaction(alice.as_str(), bob.as_str(), forged.as_bytes())
        .await;
    assert!(refused.starts_with("550 5.7.1"), "{refused}");
    let nul = format!("From: <{alice}>\r\nSubject: nul\r\n\r\nx\0y\r\n.\r\n");
    let refused = client
        .transaction(alice.as_str(), bob.as_str(), nul.as_bytes())
        .await;
    assert!(refused.starts_with("550 5.6.0"), "{refused}");
    let honest = format!("From: Alice <{alice}>\r\nSubject: hi\r\n\r\nx\r\n.\r\n");
    let sent = client
        .transaction(alice.as_str(), bob.as_str(), honest.as_bytes())
        .await;
    assert!(sent.starts_with("250"), "{sent}");
    let inbox = h.stored_messages(&bob, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].0.envelope.subject.as_deref(), Some("hi"));
}

#[tokio::test]
async fn idle_connections_cannot_keep_mail_out_of_a_full_listener() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // Room for 8 sessions; past 6 open, the longest idle ones are pushed out.
    let limits = pushmail_listener::Limits {
        max_connections: 8,
        max_connections_per_source: 8,
        ..pushmail_listener::Limits::default()
    };
    let settings = SmtpSettings {
        shed_above: 6,
        ..SmtpSettings::default()
    };
    let smtp = h
        .listen_smtp_with(Smtp::inbound(h.store.clone(), settings), limits)
        .await;
    // An attacker opens eight idle connections: the listener is full.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let (client, greeting) = Client::connect(smtp).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        idle.push(client);
    }
    // Real mail still gets in, at once: the oldest idlers were told 421 to make room.
    let started = Instant::now();
    let (mut client, greeting) = Client::connect(smtp).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    client.command("EHLO real.example").await;
    let answer = client
        .transaction(
            "bob@real.example",
            alice.as_str(),
            b"Subject: real\r\n\r\nx\r\n.\r\n",
        )
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let told = idle.first_mut().unwrap().reply().await;
    assert!(told.starts_with("421 4.7.0"), "{told}");
}

/// `kib` KiB of 1,000-octet lines after a Subject header, without the final dot.
fn message_of_kib(kib: usize) -> Vec<u8> {
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    while message.len() + 1000 <= kib * 1024 {
        message.extend_from_slice(&[b'x'; 998]);
        message.extend_from_slice(b"\r\n");
    }
    message
}

#[tokio::test]
async fn messages_held_at_once_share_one_data_budget() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let budget = pushmail_smtp::DataBudget::new(1024 * 1024);
    let smtp = h
        .listen_smtp(
            Smtp::inbound(h.store.clone(), SmtpSettings::default()).with_data_budget(budget),
        )
        .await;
    // Alone, a message of nearly the whole budget is taken: the buffer's last growth is only
    // what the message needs.
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO big.example").await;
    let mut whole = message_of_kib(900);
    whole.extend_from_slice(b".\r\n");
    let answer = client
        .transaction("bob@big.example", alice.as_str(), &whole)
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    // One session holds 600 KiB before its final dot: another's 600 KiB find the budget spent
    // (once the server has read the first one's), and are read to their end and refused 452.
    let (mut holder, _) = Client::connect(smtp).await;
    holder.command("EHLO big.example").await;
    holder
        .start_data("bob@big.example", &[alice.as_str()])
        .await;
    holder.send(&message_of_kib(600)).await;
    let mut other = message_of_kib(600);
    other.extend_from_slice(b".\r\n");
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO big.example").await;
    let mut taken_meanwhile = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = client
            .transaction("bob@big.example", alice.as_str(), &other)
            .await;
        if answer.starts_with("452 4.3.1") {
            break;
        }
        assert!(answer.starts_with("250"), "{answer}");
        assert!(
            Instant::now() < deadline,
            "never refused while the budget was held"
        );
        taken_meanwhile += 1;
    }
    // The holder ends its message: it is taken, and the budget is whole again.
    holder.send(b".\r\n").await;
    let answer = holder.reply().await;
    assert!(answer.starts_with("250"), "{answer}");
    let answer = client
        .transaction("bob@big.example", alice.as_str(), &other)
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    let stored = h.stored_messages(&alice, "INBOX").await;
    assert_eq!(stored.len(), 3 + taken_meanwhile);
}
