//! The `pushmail` process taking mail: SIGKILL in the middle of a stream of deliveries loses no
//! acknowledged message, SIGTERM lets a session in flight finish and stops every listener
//! however early it comes, and notices pending at a SIGKILL all go out after the restart.

use std::time::{Duration, Instant};

use pushmail_core::protocol::sign;
use pushmail_core::types::{Address, now};
use pushmail_store::EmbeddedStore;
use pushmail_store::prelude::*;
use serde_json::{Value, json};

mod support;
use support::*;

/// Sends `count` messages to alice over one SMTP session, reporting each acknowledged subject.
async fn deliver_stream(
    smtp: String,
    client: usize,
    count: usize,
    acknowledged: tokio::sync::mpsc::UnboundedSender<String>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let Ok(stream) = tokio::net::TcpStream::connect(&smtp).await else {
        return;
    };
    let (reader, mut writer) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let expect = async |lines: &mut tokio::io::Lines<_>, code: &str| -> bool {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.starts_with(&format!("{code}-")) => continue,
                Ok(Some(line)) => return line.starts_with(code),
                _ => return false,
            }
        }
    };
    if !expect(&mut lines, "220").await {
        return;
    }
    let _ = writer.write_all(b"EHLO crash.test\r\n").await;
    if !expect(&mut lines, "250").await {
        return;
    }
    for i in 0..count {
        let subject = format!("crash {client}-{i}");
        let transaction = b"MAIL FROM:<c@crash.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n";
        if writer.write_all(transaction).await.is_err()
            || !expect(&mut lines, "250").await
            || !expect(&mut lines, "250").await
            || !expect(&mut lines, "354").await
        {
            return;
        }
        let body = format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n");
        if writer.write_all(body.as_bytes()).await.is_err() || !expect(&mut lines, "250").await {
            return;
        }
        if acknowledged.send(subject).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_deliveries_loses_no_acknowledged_message() {
    let dir = data_dir();
    let mut process = start(dir.path()).await;
    let (sender, mut acknowledged) = tokio::sync::mpsc::unbounded_channel::<String>();
    let streams: Vec<_> = (0..6)
        .map(|client| {
            tokio::spawn(deliver_stream(
                process.smtp.clone(),
                client,
                40,
                sender.clone(),
            ))
        })
        .collect();
    drop(sender);
    // Kill once a good part is acknowledged, with the rest in flight.
    let mut acked = Vec::new();
    while acked.len() < 60 {
        match acknowledged.recv().await {
            Some(subject) => acked.push(subject),
            None => break,
        }
    }
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    for stream in streams {
        let _ = stream.await;
    }
    while let Ok(subject) = acknowledged.try_recv() {
        acked.push(subject);
    }
    assert!(acked.len() >= 60, "only {} acknowledged", acked.len());

    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb")).expect("reopens");
    let alice = Address::parse("alice@example.com").unwrap();
    let inbox = pushmail_core::folder::FolderName::inbox();
    let stored = store.messages(&alice, &inbox, 0, 10_000).await.unwrap();
    let subjects: std::collections::HashSet<_> = stored
        .iter()
        .filter_map(|m| m.envelope.subject.clone())
        .collect();
    for subject in &acked {
        assert!(
            subjects.contains(subject),
            "acknowledged {subject} was lost"
        );
    }
    let mut uids: Vec<u32> = stored.iter().map(|m| m.uid).collect();
    uids.dedup();
    assert_eq!(uids.len(), stored.len(), "UIDs are unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_lets_a_session_in_flight_finish() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let dir = data_dir();
    let mut process = start(dir.path()).await;
    let stream = tokio::net::TcpStream::connect(&process.smtp).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(reader).lines();
    assert!(reply_line(&mut lines).await.starts_with("220"));
    writer
        .write_all(
            b"EHLO term.test\r\nMAIL FROM:<t@term.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
        )
        .await
        .unwrap();
    for code in ["250", "250", "250", "354"] {
        let line = reply_line(&mut lines).await;
        assert!(line.starts_with(code), "{line}");
    }
    // SIGTERM in the middle of DATA.
    terminate(&process);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(&process.smtp).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The session in flight still finishes its message, and is told so.
    writer
        .write_all(b"Subject: finished after SIGTERM\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    let done = reply_line(&mut lines).await;
    assert!(done.starts_with("250 2.0.0"), "{done}");
    assert!(reply_line(&mut lines).await.starts_with("221"));
    // The other listeners have nothing in flight; the SMTP one's grace period is 30 s.
    let status = exit_within(&mut process, Duration::from_secs(40)).await;
    assert!(status.success(), "exits cleanly: {status}");

    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb")).expect("reopens");
    let alice = Address::parse("alice@example.com").unwrap();
    let inbox = pushmail_core::folder::FolderName::inbox();
    let stored = store.messages(&alice, &inbox, 0, 100).await.unwrap();
    assert!(
        stored
            .iter()
            .any(|m| m.envelope.subject.as_deref() == Some("finished after SIGTERM"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_as_soon_as_the_addresses_are_printed_stops_every_listener() {
    let dir = data_dir();
    // Only up to the addresses: the listeners may not have started waiting for a stop yet.
    let mut process = launch(dir.path());
    terminate(&process);
    let status = exit_within(&mut process, Duration::from_secs(40)).await;
    assert!(
        status.success(),
        "a clean stop, not killed by the signal: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listeners_role_serves_mail_and_not_the_http_apis() {
    let dir = data_dir();
    let mut process = launch_with(dir.path(), &["--role", "listeners"]);
    assert!(
        process.token.is_none(),
        "no first-run token printed (task output is logged)"
    );
    let stream = {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::net::TcpStream::connect(&process.smtp).await {
                Ok(stream) => break stream,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("SMTP did not start: {error}"),
            }
        }
    };
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stream));
    assert!(reply_line(&mut lines).await.starts_with("220 "));
    for http in [&process.admin, &process.subscribe] {
        let refused = reqwest::get(http.as_str()).await;
        assert!(refused.is_err(), "{http} is not served: {refused:?}");
    }
    drop(lines);
    terminate(&process);
    let status = exit_within(&mut process, Duration::from_secs(40)).await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_a_delivery() {
    let dir = data_dir();
    let port = free_port();
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let process = launch_with(
        dir.path(),
        &["--metrics-addr", &format!("127.0.0.1:{port}")],
    );
    let scrape = async || -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match reqwest::get(&metrics).await {
                Ok(answer) => return answer.text().await.unwrap(),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("no metrics: {error}"),
            }
        }
    };
    scrape().await;
    let (sent, mut acknowledged) = tokio::sync::mpsc::unbounded_channel();
    deliver_stream(process.smtp.clone(), 0, 2, sent).await;
    for _ in 0..2 {
        acknowledged.recv().await.expect("acknowledged");
    }
    // A recipient refused, counted by its reply code.
    {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let stream = tokio::net::TcpStream::connect(&process.smtp).await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut lines = tokio::io::BufReader::new(reader).lines();
        writer
            .write_all(
                b"EHLO m.test\r\nMAIL FROM:<m@m.test>\r\nRCPT TO:<nobody@example.com>\r\nQUIT\r\n",
            )
            .await
            .unwrap();
        let mut refused = false;
        while let Ok(Some(line)) = lines.next_line().await {
            refused |= line.starts_with('5');
        }
        assert!(refused, "an unknown recipient is refused");
    }
    // A SUBSCRIBE, counted by its outcome.
    let subscribe = json!({"type": "SUBSCRIBE", "email": "alice@example.com",
        "password": "alice-password", "registration": "r-metrics", "generation": 1,
        "callback": "https://push.example.net/n/metrics"});
    let answer = post_signed(
        &reqwest::Client::new(),
        &process.subscribe,
        &subscribe,
        now().timestamp(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    let text = scrape().await;
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    assert_eq!(value("pushmail_deliveries_total{outcome=\"stored\"}"), 2.0);
    assert_eq!(
        value("pushmail_push_requests_total{outcome=\"subscribed\"}"),
        1.0
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("pushmail_smtp_refusals_total{code=\"5")),
        "{text}"
    );
    assert!(value("pushmail_sessions_total{protocol=\"smtp\"}") >= 1.0);
    assert!(text.contains("# HELP pushmail_deliveries_total"), "{text}");
    // The dispatcher's passes report the notice backlog (none waiting here).
    assert_eq!(value("pushmail_notice_oldest_seconds"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_given_as_pem_variables_serves_starttls() {
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::crypto::ring;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    let dir = data_dir();
    let process = launch_with_env(
        dir.path(),
        &[],
        &[
            ("PUSHMAIL_TLS_CERT_PEM", &cert),
            ("PUSHMAIL_TLS_KEY_PEM", &key),
        ],
    );
    let stream = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::net::TcpStream::connect(&process.smtp).await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("SMTP did not start: {error}"),
            }
        }
    };
    let mut stream = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    let mut reply = async |stream: &mut tokio::io::BufReader<tokio::net::TcpStream>| loop {
        line.clear();
        stream.read_line(&mut line).await.unwrap();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.clone();
        }
    };
    assert!(reply(&mut stream).await.starts_with("220"));
    stream
        .get_mut()
        .write_all(b"EHLO pem.test\r\nSTARTTLS\r\n")
        .await
        .unwrap();
    assert!(reply(&mut stream).await.starts_with("250"));
    assert!(reply(&mut stream).await.starts_with("220"));
    // A client trusting exactly the given certificate completes the handshake.
    let mut roots = RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, stream.into_inner()).await;
    assert!(tls.is_ok(), "{tls:?}");
    drop(tls);

    // pushmail probe over IMAPS, trusting exactly that certificate: passes; trusting the web's
    // roots instead: fails at the handshake.
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let (subscribe, smtp, imaps) = (
        process.subscribe.clone(),
        process.smtp.clone(),
        process.imaps.clone(),
    );
    let probe = move |trust: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pushmail"));
        command
            .args([
                "probe",
                "--account",
                "alice@example.com",
                "--imaps",
                "--tls-name",
                "localhost",
            ])
            .args(["--subscribe-url", &subscribe, "--smtp", &smtp])
            .args(["--imap", &imaps])
            .env("PUSHMAIL_PROBE_SECRET", "local-dev-secret")
            .env("PUSHMAIL_PROBE_PASSWORD", "alice-password");
        if let Some(trust) = trust {
            command.arg("--ca-file").arg(trust);
        }
        command.output().unwrap()
    };
    let trusted = tokio::task::spawn_blocking({
        let probe = probe.clone();
        let ca = ca.clone();
        move || probe(Some(&ca))
    })
    .await
    .unwrap();
    let shown = String::from_utf8_lossy(&trusted.stdout).into_owned();
    assert!(trusted.status.success(), "{shown}");
    assert!(shown.contains("probe: passed"), "{shown}");
    let untrusted = tokio::task::spawn_blocking(move || probe(None))
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&untrusted.stdout).into_owned();
    assert!(!untrusted.status.success(), "{shown}");
    assert!(shown.contains("TLS handshake failed"), "{shown}");
}

/// A push service's callback on loopback: keeps every NEW_MAIL it accepts, answers `status`.
async fn notice_sink(
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
) -> String {
    use std::sync::atomic::Ordering;
    let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (status, accepted) = (status.clone(), accepted.clone());
        async move {
            let answer = status.load(Ordering::SeqCst);
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let timestamp: i64 = header("x-push-timestamp").parse().unwrap_or_default();
            let signed = sign(b"local-dev-secret", timestamp, &body) == header("x-push-signature");
            if answer == 200 && signed {
                accepted
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
            axum::http::StatusCode::from_u16(if signed { answer } else { 401 }).unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/n/{id}", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/n/alice")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_pending_at_a_sigkill_all_arrive_after_the_restart() {
    use std::sync::atomic::{AtomicU16, Ordering};
    let dir = data_dir();
    let mut process = start(dir.path()).await;
    let status = std::sync::Arc::new(AtomicU16::new(503));
    let accepted = std::sync::Arc::<std::sync::Mutex<Vec<Value>>>::default();
    let callback = notice_sink(status.clone(), accepted.clone()).await;
    let request = json!({
        "type": "SUBSCRIBE", "email": "alice@example.com", "password": "alice-password",
        "registration": "r-notices", "generation": 1, "callback": callback,
    });
    let subscribed = post_signed(
        &reqwest::Client::new(),
        &process.subscribe,
        &request,
        now().timestamp(),
    )
    .await
    .unwrap();
    assert_eq!(subscribed.status().as_u16(), 200);

    // The callback is down while the mail comes in; then the process is killed.
    let (sender, mut acknowledged) = tokio::sync::mpsc::unbounded_channel::<String>();
    deliver_stream(process.smtp.clone(), 0, 15, sender).await;
    let mut acked = Vec::new();
    while let Ok(subject) = acknowledged.try_recv() {
        acked.push(subject);
    }
    assert_eq!(acked.len(), 15);
    process.child.kill().unwrap();
    process.child.wait().unwrap();
    assert!(accepted.lock().unwrap().is_empty());

    // Back up, and the callback too: every acknowledged message is announced.
    status.store(200, Ordering::SeqCst);
    let _again = start(dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let announced: std::collections::HashSet<String> = accepted
            .lock()
            .unwrap()
            .iter()
            .filter_map(|notice| notice["subject"].as_str().map(str::to_owned))
            .collect();
        if acked.iter().all(|subject| announced.contains(subject)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not announced after the restart: {:?}",
            acked
                .iter()
                .filter(|s| !announced.contains(*s))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let notices = accepted.lock().unwrap().clone();
    assert!(
        notices
            .iter()
            .all(|n| n["type"] == "NEW_MAIL" && n["email"] == "alice@example.com")
    );
}
