//! The `pushmail` process as a user runs it: started in a fresh data directory, driven over
//! HTTP, and killed with SIGKILL in the middle of a stream of SUBSCRIBEs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pushmail_core::protocol::sign;
use pushmail_core::types::{Address, now};
use pushmail_store::prelude::*;
use pushmail_store::{EmbeddedStore, LinkQuery};
use serde_json::{Value, json};

struct Process {
    child: Child,
    subscribe: String,
    admin: String,
    /// The SMTP listener's address, as the process printed it.
    smtp: String,
    /// The first-run token, when this start printed one.
    token: Option<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh data directory, removed when the test ends.
fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pushmail-process-")
        .tempdir()
        .unwrap()
}

/// Starts `pushmail --demo` on free ports and reads its standard output up to the addresses it
/// prints (its listeners may not serve yet).
fn launch(data_dir: &Path) -> Process {
    let (subscribe_port, admin_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["--data-dir", data_dir.to_str().unwrap(), "--demo"])
        .args(["--subscribe-addr", &format!("127.0.0.1:{subscribe_port}")])
        .args(["--admin-addr", &format!("127.0.0.1:{admin_port}")])
        .args(["--smtp-addr", "127.0.0.1:0"])
        .args(["--submission-addr", "127.0.0.1:0"])
        .args(["--imap-addr", "127.0.0.1:0"])
        .args(["--imaps-addr", "127.0.0.1:0"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushmail starts");
    let stdout = child.stdout.take().unwrap();
    let mut token = None;
    let mut smtp = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("export PUSHMAIL_TOKEN=") {
            token = Some(t.to_owned());
        }
        if let Some(address) = line.strip_prefix("SMTP:") {
            smtp = address.trim().to_owned();
        }
        if line.starts_with("Store:") {
            break;
        }
    }
    Process {
        child,
        smtp,
        subscribe: format!("http://127.0.0.1:{subscribe_port}/subscribe"),
        admin: format!("http://127.0.0.1:{admin_port}/admin"),
        token,
    }
}

/// Starts `pushmail --demo` on free ports and waits until both listeners answer.
async fn start(data_dir: &Path) -> Process {
    let process = launch(data_dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{}/openapi.yaml", process.admin))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "pushmail did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process
}

/// A SUBSCRIBE signed as a push service signs it, with a timestamp of its own.
async fn subscribe(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    generation: u64,
    timestamp: i64,
) -> Result<Value, String> {
    let body = serde_json::to_vec(&json!({
        "type": "SUBSCRIBE", "email": email, "password": password,
        "registration": format!("r-{}", email.replace('@', ".")), "generation": generation,
        "callback": "https://push.example.net/n/1",
    }))
    .unwrap();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-push-timestamp", timestamp.to_string())
        .header(
            "x-push-signature",
            sign(b"local-dev-secret", timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_command_answers_a_signed_subscribe_and_an_admin_request() {
    let dir = data_dir();
    let process = start(dir.path()).await;
    let token = process.token.clone().expect("a first run prints a token");
    let client = reqwest::Client::new();
    let answer = subscribe(
        &client,
        &process.subscribe,
        "alice@example.com",
        "alice-password",
        1,
        now().timestamp(),
    )
    .await
    .unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["activation"].as_str()),
        (Some("subscribed"), Some("sent"))
    );

    let listed: Value = client
        .get(format!(
            "{}/domains/example.com/integrated-accounts",
            process.admin
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["address"], "alice@example.com");
    // With no SES configured, the activation mail is kept, not dropped.
    let mail: Value = client
        .get(format!("{}/accounts/alice@example.com/mail", process.admin))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        mail["items"][0]["subject"],
        "Email activation information (push mail)"
    );

    // A second start on the same directory keeps everything and prints no new token.
    drop(process);
    let again = start(dir.path()).await;
    assert_eq!(again.token, None);
    let status = client
        .get(format!(
            "{}/accounts/alice@example.com/integration",
            again.admin
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_subscribes_loses_no_acknowledged_link() {
    let dir = data_dir();
    let mut process = start(dir.path()).await;
    let token = process.token.clone().unwrap();
    let client = reqwest::Client::new();
    let accounts: Vec<String> = (0..120)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    for address in &accounts {
        let created = client
            .post(format!("{}/domains/example.com/accounts", process.admin))
            .bearer_auth(&token)
            .json(&json!({"address": address, "password": "crash-test-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
    }

    // Eight clients stream SUBSCRIBEs; the process is killed while they are in flight.
    let (sender, mut acknowledged) = tokio::sync::mpsc::unbounded_channel::<String>();
    let start_ts = now().timestamp();
    let streams: Vec<_> = accounts
        .chunks(15)
        .map(|chunk| {
            let (client, url, sender, chunk) = (
                client.clone(),
                process.subscribe.clone(),
                sender.clone(),
                chunk.to_vec(),
            );
            tokio::spawn(async move {
                for (i, address) in chunk.iter().enumerate() {
                    match subscribe(
                        &client,
                        &url,
                        address,
                        "crash-test-password",
                        1,
                        start_ts - i as i64,
                    )
                    .await
                    {
                        Ok(_) => sender.send(address.clone()).unwrap(),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(sender);
    let mut acked = Vec::new();
    while acked.len() < 40 {
        acked.push(
            acknowledged
                .recv()
                .await
                .expect("SUBSCRIBEs are acknowledged"),
        );
    }
    process.child.kill().unwrap(); // SIGKILL
    process.child.wait().unwrap();
    for stream in streams {
        let _ = stream.await;
    }
    while let Ok(address) = acknowledged.try_recv() {
        acked.push(address);
    }
    assert!(
        acked.len() < accounts.len(),
        "the kill came too late to land mid-stream"
    );
    drop(process);

    // The file opens, every acknowledged link is there, and the integrated-accounts order agrees.
    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb"))
        .expect("the store file is usable after SIGKILL");
    for address in &acked {
        let link = store.link(&Address::parse(address).unwrap()).await.unwrap();
        assert!(
            link.is_some_and(|l| l.is_linked()),
            "{address} was acknowledged but is not linked"
        );
    }
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_links(&LinkQuery {
                domain: None,
                activation: None,
                cursor,
                limit: 100,
            })
            .await
            .expect("every indexed link has its record");
        listed += page.items.len();
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(listed >= acked.len());
    for address in &accounts {
        assert!(
            store
                .account(&Address::parse(address).unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
    drop(store);

    // And the process starts again on it.
    let again = start(dir.path()).await;
    let status = client
        .get(format!("{}/accounts/{}/integration", again.admin, acked[0]))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}

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
    let inbox = pushmail_core::folder::FolderName::parse("INBOX").unwrap();
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

/// One reply line (the last of a multi-line reply).
async fn reply_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a reply within 30 s")
            .unwrap()
            .unwrap_or_default();
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

fn terminate(process: &Process) {
    let pid = process.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
}

/// The process's exit status once it ends, failing the test (not hanging it) if it has not
/// within `limit`; the process is then killed when `Process` drops.
async fn exit_within(process: &mut Process, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still running {limit:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let inbox = pushmail_core::folder::FolderName::parse("INBOX").unwrap();
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
    let body = serde_json::to_vec(&json!({
        "type": "SUBSCRIBE", "email": "alice@example.com", "password": "alice-password",
        "registration": "r-notices", "generation": 1, "callback": callback,
    }))
    .unwrap();
    let timestamp = now().timestamp();
    let subscribed = reqwest::Client::new()
        .post(&process.subscribe)
        .header("content-type", "application/json")
        .header("x-push-timestamp", timestamp.to_string())
        .header(
            "x-push-signature",
            sign(b"local-dev-secret", timestamp, &body),
        )
        .body(body)
        .send()
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
