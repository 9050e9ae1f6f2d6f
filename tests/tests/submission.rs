//! The SMTP submission role over real TCP: STARTTLS (and the pipelining trick it must resist),
//! AUTH PLAIN/LOGIN only over TLS with the credential limits, MAIL FROM the account itself, and
//! where the mail goes: a smarthost, DKIM-signed (verified with mail-auth), local recipients'
//! INBOXes, a copy in Sent, retries from the queue and a bounce when it finally fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use pushmail_core::types::Address;
use pushmail_smtp::{Outgoing, RelayPolicy, Smtp, SmtpSettings};
use pushmail_tests::smtp::{Client, Sink, test_tls};
use pushmail_tests::{Harness, PASSWORD};
use tokio_rustls::TlsConnector;

fn plain(login: &str, password: &str) -> String {
    STANDARD.encode(format!("\0{login}\0{password}"))
}

/// A submission listener with TLS (no plaintext AUTH) and a relay to `sink`.
async fn submission(
    h: &Harness,
    outgoing: Option<Arc<Outgoing>>,
    plaintext_auth_on_loopback: bool,
) -> (std::net::SocketAddr, TlsConnector) {
    let (acceptor, connector) = test_tls();
    let settings = SmtpSettings {
        plaintext_auth_on_loopback,
        ..SmtpSettings::default()
    };
    let smtp = Smtp::submission(h.store.clone(), settings, outgoing).with_tls(acceptor);
    (h.listen_smtp(smtp).await, connector)
}

/// Connected, TLS on, EHLO said: ready to AUTH.
async fn over_tls(address: std::net::SocketAddr, connector: &TlsConnector) -> Client {
    let (mut client, _) = Client::connect(address).await;
    client.command("EHLO device.test").await;
    let ready = client.command("STARTTLS").await;
    assert!(ready.starts_with("220 2.0.0"), "{ready}");
    let mut client = client.start_tls(connector).await;
    client.command("EHLO device.test").await;
    client
}

#[tokio::test]
async fn auth_waits_for_tls_and_the_session_starts_over_after_it() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, connector) = submission(&h, None, false).await;
    let (mut client, _) = Client::connect(address).await;
    let ehlo = client.command("EHLO device.test").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(
        !ehlo.contains("AUTH"),
        "no AUTH offered in the clear: {ehlo}"
    );
    let refused = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(refused.starts_with("530 5.7.0"), "{refused}");
    let refused = client.command(&format!("MAIL FROM:<{alice}>")).await;
    assert!(refused.starts_with("530 5.7.0"), "{refused}");

    // STARTTLS with a command pipelined behind it in the clear: the command must be dropped,
    // never answered as if it had come over TLS (CVE-2011-0411).
    client.send(b"STARTTLS\r\nEHLO injected\r\n").await;
    let ready = client.reply().await;
    assert!(ready.starts_with("220"), "{ready}");
    let mut client = client.start_tls(&connector).await;
    let first = client.command("NOOP").await;
    assert_eq!(first, "250 2.0.0 OK\r\n", "the injected EHLO was answered");
    // The session started over: EHLO again, and now AUTH is offered, STARTTLS is not.
    let refused = client.command(&format!("MAIL FROM:<{alice}>")).await;
    assert!(refused.starts_with("503 5.5.1"), "{refused}");
    let ehlo = client.command("EHLO device.test").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert!(client.command("STARTTLS").await.starts_with("503"));
}

#[tokio::test]
async fn auth_plain_and_login_with_refusals() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, connector) = submission(&h, None, false).await;
    let mut client = over_tls(address, &connector).await;

    let wrong = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), "wrong")))
        .await;
    assert!(wrong.starts_with("535 5.7.8"), "{wrong}");
    let unknown = client
        .command(&format!(
            "AUTH PLAIN {}",
            plain("nobody@example.org", PASSWORD)
        ))
        .await;
    assert!(unknown.starts_with("535 5.7.8"), "{unknown}");
    // Acting for another account is not allowed.
    let proxy = STANDARD.encode(format!("boss@{}\0{alice}\0{PASSWORD}", h.domain));
    let refused = client.command(&format!("AUTH PLAIN {proxy}")).await;
    assert!(refused.starts_with("501"), "{refused}");
    assert!(client.command("AUTH CRAM-MD5").await.starts_with("504"));
    assert!(client.command("AUTH PLAIN !!!").await.starts_with("501"));
    // Cancelled half-way.
    assert!(
        client
            .command("AUTH LOGIN")
            .await
            .starts_with("334 VXNlcm5hbWU6")
    );
    assert!(client.command("*").await.starts_with("501"));

    // LOGIN, in two steps.
    assert!(client.command("AUTH LOGIN").await.starts_with("334"));
    assert!(
        client
            .command(&STANDARD.encode(alice.as_str()))
            .await
            .starts_with("334 UGFzc3dvcmQ6")
    );
    let ok = client.command(&STANDARD.encode(PASSWORD)).await;
    assert!(ok.starts_with("235 2.7.0"), "{ok}");
    assert!(client.command("AUTH PLAIN x").await.starts_with("503"));

    // MAIL FROM must be the account itself.
    let other = client
        .command(&format!("MAIL FROM:<boss@{}>", h.domain))
        .await;
    assert!(other.starts_with("553 5.7.1"), "{other}");
    assert!(
        client
            .command("MAIL FROM:<>")
            .await
            .starts_with("553 5.7.1")
    );
    let own = client.command(&format!("MAIL FROM:<{alice}>")).await;
    assert!(own.starts_with("250"), "{own}");
    // No relay is configured for this listener: other domains are refused at RCPT.
    let remote = client.command("RCPT TO:<bob@remote.example>").await;
    assert!(remote.starts_with("550 5.7.1"), "{remote}");

    // AUTH PLAIN with the response on a line of its own.
    let mut second = over_tls(address, &connector).await;
    assert!(second.command("AUTH PLAIN").await.starts_with("334"));
    let ok = second.command(&plain(alice.as_str(), PASSWORD)).await;
    assert!(ok.starts_with("235"), "{ok}");
}

#[tokio::test]
async fn racing_wrong_passwords_are_held_to_the_account_limit() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let (address, connector) = submission(&h, None, false).await;
    let mut tries = Vec::new();
    for _ in 0..12 {
        let (connector, alice) = (connector.clone(), alice.clone());
        tries.push(tokio::spawn(async move {
            let mut client = over_tls(address, &connector).await;
            client
                .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), "guess")))
                .await
        }));
    }
    let mut checked = 0;
    for answer in futures::future::join_all(tries).await {
        let answer = answer.unwrap();
        match &answer[..3] {
            "535" => checked += 1,
            "454" => {}
            _ => panic!("unexpected answer {answer}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} guesses were checked; the limit is 5"
    );
    // The account is locked for this surface now, even with the right password.
    let mut client = over_tls(address, &connector).await;
    let locked = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(locked.starts_with("454 4.7.0"), "{locked}");
}

#[tokio::test]
async fn the_inbound_role_offers_no_auth() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let smtp = h.smtp(SmtpSettings::default()).await;
    let (mut client, _) = Client::connect(smtp).await;
    let ehlo = client.command("EHLO device.test").await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    let refused = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(refused.starts_with("502"), "{refused}");
}

/// A DKIM key for the test's domain in a file (Ed25519), and its DNS record.
fn dkim_key(dir: &tempfile::TempDir) -> (String, String) {
    use mail_auth::common::crypto::Ed25519Key;
    let der = Ed25519Key::generate_pkcs8().unwrap();
    let public = Ed25519Key::from_pkcs8_der(&der).unwrap().public_key();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    let path = dir.path().join("dkim.pem");
    std::fs::write(&path, pem).unwrap();
    (
        format!("file:{}", path.display()),
        format!("v=DKIM1; k=ed25519; p={}", STANDARD.encode(public)),
    )
}

/// TXT answers from a map instead of DNS.
struct TxtRecords(Mutex<HashMap<Box<str>, mail_auth::Txt>>);

impl mail_auth::ResolverCache<Box<str>, mail_auth::Txt> for TxtRecords {
    fn get<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }
    fn remove<Q>(&self, name: &Q) -> Option<mail_auth::Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }
    fn insert(&self, key: Box<str>, value: mail_auth::Txt, _: std::time::Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

async fn dkim_passes(raw: &[u8], selector: &str, domain: &str, record: &str) -> bool {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
    let key: mail_auth::Txt = mail_auth::common::verify::DomainKey::parse(record.as_bytes())
        .unwrap()
        .into();
    let records = TxtRecords(Mutex::default());
    for name in [
        format!("{selector}._domainkey.{domain}."),
        format!("{selector}._domainkey.{domain}"),
    ] {
        records
            .0
            .lock()
            .unwrap()
            .insert(name.into_boxed_str(), key.clone());
    }
    let message = mail_auth::AuthenticatedMessage::parse(raw).unwrap();
    let authenticator =
        mail_auth::MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default())
            .unwrap();
    let outputs = authenticator
        .verify_dkim(mail_auth::Parameters::new(&message).with_txt_cache(&records))
        .await;
    outputs
        .iter()
        .any(|output| output.result() == &mail_auth::DkimResult::Pass)
}

#[tokio::test]
async fn device_mail_reaches_the_smarthost_signed_with_a_copy_in_sent() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let carol = h.account("carol").await;
    let dir = tempfile::tempdir().unwrap();
    let (key_ref, record) = dkim_key(&dir);
    let mut domain = h.store.domain(&h.domain).await.unwrap().unwrap();
    domain.dkim_selector = Some("pm".into());
    domain.dkim_key_ref = Some(key_ref);
    h.store.put_domain(&domain).await.unwrap();

    let sink = Sink::start().await;
    let outgoing = sink.relay(h.store.clone(), RelayPolicy::default());
    let (address, connector) = submission(&h, Some(outgoing.clone()), false).await;
    let mut client = over_tls(address, &connector).await;
    let ok = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(ok.starts_with("235"), "{ok}");
    assert!(
        client
            .command(&format!("MAIL FROM:<{alice}>"))
            .await
            .starts_with("250")
    );
    assert!(
        client
            .command("RCPT TO:<bob@remote.example>")
            .await
            .starts_with("250")
    );
    assert!(
        client
            .command(&format!("RCPT TO:<{carol}>"))
            .await
            .starts_with("250")
    );
    assert!(client.command("DATA").await.starts_with("354"));
    client
        .send(
            format!(
                "From: {alice}\r\nTo: bob@remote.example, {carol}\r\nSubject: from the device\r\n\
                 Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nsent from my phone\r\n..a dot\r\n.\r\n"
            )
            .as_bytes(),
        )
        .await;
    let queued = client.reply().await;
    assert!(queued.starts_with("250 2.0.0"), "{queued}");

    // The worker woke on the queued mail; wait for the sink to have it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let worker = tokio::spawn(outgoing.clone().run(std::future::pending()));
    while sink.received().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the smarthost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The worker drops the job once the relay has taken it.
    while !h
        .store
        .due_relays(Utc::now() + chrono::Duration::days(30), 10)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the job stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
    let relayed = &sink.received()[0];
    assert_eq!(relayed.from, alice.as_str());
    assert_eq!(relayed.to, vec!["bob@remote.example".to_owned()]);
    let text = String::from_utf8_lossy(&relayed.data);
    assert!(text.contains("with ESMTPSA"), "{text}");
    assert!(
        text.contains("\r\n.a dot\r\n"),
        "dot-stuffing undone on the way: {text}"
    );
    assert!(
        text.contains("Message-ID: <"),
        "a Message-ID is added: {text}"
    );
    assert!(
        dkim_passes(&relayed.data, "pm", h.domain.as_str(), &record).await,
        "DKIM does not verify: {text}"
    );

    // Carol (local) has it in her INBOX; Alice has a copy in Sent, seen.
    let inbox = h.stored_messages(&carol, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].0.envelope.subject.as_deref(),
        Some("from the device")
    );
    let sent = h.stored_messages(&alice, "Sent").await;
    assert_eq!(sent.len(), 1);
    let (meta, copy) = &sent[0];
    assert!(
        meta.flags.contains(&"\\Seen".to_owned()),
        "{:?}",
        meta.flags
    );
    assert!(dkim_passes(copy, "pm", h.domain.as_str(), &record).await);
}

/// Queues one message from `alice` to `to` through a fresh authenticated session.
async fn submit(
    address: std::net::SocketAddr,
    connector: &TlsConnector,
    alice: &Address,
    to: &str,
) {
    let mut client = over_tls(address, connector).await;
    let ok = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(ok.starts_with("235"), "{ok}");
    let answer = client
        .transaction(
            alice.as_str(),
            to,
            b"Subject: lunch?\r\n\r\nat noon\r\n.\r\n",
        )
        .await;
    assert!(answer.starts_with("250"), "{answer}");
}

#[tokio::test]
async fn a_refused_recipient_bounces_into_the_senders_inbox() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = Sink::start().await;
    sink.answer_rcpt_with("550 5.1.1 no such user");
    let outgoing = sink.relay(h.store.clone(), RelayPolicy::default());
    let (address, connector) = submission(&h, Some(outgoing.clone()), false).await;
    submit(address, &connector, &alice, "ghost@remote.example").await;

    let report = outgoing.work(Utc::now()).await.unwrap();
    assert_eq!((report.relayed, report.bounced), (0, 1));
    let inbox = h.stored_messages(&alice, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    let (meta, dsn) = &inbox[0];
    assert_eq!(
        meta.envelope.subject.as_deref(),
        Some("Undelivered Mail Returned to Sender")
    );
    let dsn = String::from_utf8_lossy(dsn);
    assert!(
        dsn.contains("Final-Recipient: rfc822; ghost@remote.example"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 5.1.1"), "{dsn}");
    assert!(
        dsn.contains("Subject: lunch?"),
        "the original header comes back: {dsn}"
    );
    assert!(
        h.store
            .due_relays(Utc::now() + chrono::Duration::days(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_failing_relay_is_retried_then_given_up_with_a_bounce() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = Sink::start().await;
    sink.answer_rcpt_with("451 4.3.0 try later");
    let policy = RelayPolicy {
        first_retry: Duration::from_secs(60),
        give_up_after: Duration::from_secs(3600),
        ..RelayPolicy::default()
    };
    let outgoing = sink.relay(h.store.clone(), policy);
    let (address, connector) = submission(&h, Some(outgoing.clone()), false).await;
    submit(address, &connector, &alice, "bob@remote.example").await;
    submit(address, &connector, &alice, "dave@remote.example").await;

    let now = Utc::now();
    let first = outgoing.work(now).await.unwrap();
    assert_eq!((first.relayed, first.deferred), (0, 2));
    // Not due again before the wait is over.
    let early = outgoing
        .work(now + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(early.deferred, 0);
    // The relay recovers for the next attempt: one goes; then it fails again until given up.
    sink.answer_rcpt_with("250 OK");
    let jobs = h
        .store
        .due_relays(now + chrono::Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(
        |job| job.attempts == 1 && job.last_error.as_deref().is_some_and(|e| e.contains("451"))
    ));
    let id = jobs[0].id.clone();
    let claimed = h
        .store
        .claim_relay(
            &id,
            now + chrono::Duration::minutes(2),
            now + chrono::Duration::minutes(20),
        )
        .await
        .unwrap();
    assert!(claimed.is_some(), "due and free");
    // Claimed by someone else: this pass leaves it alone.
    let second = outgoing
        .work(now + chrono::Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!((second.relayed, second.bounced), (1, 0));
    sink.answer_rcpt_with("451 4.3.0 still down");
    let last = outgoing
        .work(now + chrono::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!((last.relayed, last.bounced), (0, 1));
    let inbox = h.stored_messages(&alice, "INBOX").await;
    assert_eq!(inbox.len(), 1, "one bounce");
    assert!(String::from_utf8_lossy(&inbox[0].1).contains("Status: 4.3.0"));
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn an_admin_set_sender_alias_may_be_used_as_mail_from() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let path = format!("/admin/accounts/{alice}");
    let domain = h.domain.clone();
    // Each bad list is refused whole, with nothing changed.
    for bad in [
        serde_json::json!({"sender_aliases": ["sales@elsewhere.example"]}),
        serde_json::json!({"sender_aliases": [alice.as_str()]}),
        serde_json::json!({"sender_aliases": ["not an address"]}),
        serde_json::json!({"sender_aliases": (0..33).map(|i| format!("a{i}@{domain}")).collect::<Vec<_>>()}),
        serde_json::json!({"sender_aliases": "sales"}),
    ] {
        let answer = h.admin_as_server("PATCH", &path, Some(bad.clone())).await;
        assert_eq!(answer.status, 400, "{bad}: {:?}", answer.body);
    }
    let unchanged = h.admin_as_server("GET", &path, None).await;
    assert_eq!(unchanged.body["sender_aliases"], serde_json::json!([]));
    let set = h
        .admin_as_server(
            "PATCH",
            &path,
            Some(serde_json::json!({"sender_aliases": [format!("Sales@{domain}"), format!("sales@{domain}")]})),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(
        set.body["sender_aliases"],
        serde_json::json!([format!("sales@{domain}")])
    );

    let (address, connector) = submission(&h, None, false).await;
    let mut client = over_tls(address, &connector).await;
    let ok = client
        .command(&format!("AUTH PLAIN {}", plain(alice.as_str(), PASSWORD)))
        .await;
    assert!(ok.starts_with("235"), "{ok}");
    let other = client.command(&format!("MAIL FROM:<boss@{domain}>")).await;
    assert!(other.starts_with("553"), "{other}");
    let alias = client.command(&format!("MAIL FROM:<sales@{domain}>")).await;
    assert!(alias.starts_with("250"), "{alias}");
}
