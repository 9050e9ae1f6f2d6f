//! The `pushmail` process for the process tests: started on free ports in a fresh data
//! directory, read from its standard output, stopped by signal, every wait bounded.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Process {
    pub child: Child,
    pub subscribe: String,
    pub admin: String,
    /// The SMTP listener's address, as the process printed it.
    pub smtp: String,
    /// The IMAPS listener's address, as printed.
    pub imaps: String,
    /// The first-run token, when this start printed one.
    pub token: Option<String>,
    /// The demo's DKIM record, as printed.
    pub dkim: Option<String>,
    /// Every line it prints after its addresses, read on a thread of its own until it exits
    /// (so its output never blocks or breaks on a full or closed pipe).
    pub output: std::sync::mpsc::Receiver<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh data directory, removed when the test ends.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pushmail-process-")
        .tempdir()
        .unwrap()
}

/// Starts `pushmail --demo` on free ports and reads its standard output up to the addresses it
/// prints (its listeners may not serve yet).
pub fn launch(data_dir: &Path) -> Process {
    launch_with(data_dir, &[])
}

/// As [`launch`], with more arguments.
pub fn launch_with(data_dir: &Path, more: &[&str]) -> Process {
    launch_with_env(data_dir, more, &[])
}

/// As [`launch`], with more arguments and variables.
pub fn launch_with_env(data_dir: &Path, more: &[&str], env: &[(&str, &str)]) -> Process {
    let (subscribe_port, admin_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["--data-dir", data_dir.to_str().unwrap(), "--demo"])
        .args(more)
        .envs(env.iter().copied())
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
    let mut dkim = None;
    let mut smtp = String::new();
    let mut imaps = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.trim().strip_prefix("export PUSHMAIL_TOKEN=") {
            token = Some(t.to_owned());
        }
        if let Some(record) = line.trim().strip_prefix("Demo DKIM:") {
            dkim = Some(record.trim().to_owned());
        }
        if let Some(address) = line.strip_prefix("SMTP:") {
            smtp = address.trim().to_owned();
        }
        if let Some(address) = line.strip_prefix("IMAPS:") {
            imaps = address.trim().to_owned();
        }
        if line.starts_with("Store:") {
            break;
        }
    }
    let (rest, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if rest.send(line).is_err() {
                break;
            }
        }
    });
    Process {
        child,
        output,
        smtp,
        imaps,
        subscribe: format!("http://127.0.0.1:{subscribe_port}/subscribe"),
        admin: format!("http://127.0.0.1:{admin_port}/admin"),
        token,
        dkim,
    }
}

/// Starts `pushmail --demo` on free ports and waits until both listeners answer.
pub async fn start(data_dir: &Path) -> Process {
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

/// One reply line (the last of a multi-line reply).
pub async fn reply_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut tokio::io::Lines<R>,
) -> String {
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

pub fn terminate(process: &Process) {
    let pid = process.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}");
}

/// The process's exit status once it ends, failing the test (not hanging it) if it has not
/// within `limit`; the process is then killed when `Process` drops.
pub async fn exit_within(process: &mut Process, limit: Duration) -> std::process::ExitStatus {
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

/// The lines the process printed after its addresses, up to its exit (or 10 s of silence).
pub fn printed(process: &Process) -> Vec<String> {
    std::iter::from_fn(|| process.output.recv_timeout(Duration::from_secs(10)).ok()).collect()
}

/// Posts a push-service request to the Subscribe URL, signed with the demo domain's secret.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    request: &serde_json::Value,
    timestamp: i64,
) -> reqwest::Result<reqwest::Response> {
    let body = serde_json::to_vec(request).expect("JSON");
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-push-timestamp", timestamp.to_string())
        .header(
            "x-push-signature",
            pushmail_core::protocol::sign(b"local-dev-secret", timestamp, &body),
        )
        .body(body)
        .send()
        .await
}
