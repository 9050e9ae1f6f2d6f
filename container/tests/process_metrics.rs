//! The process's metrics as CloudWatch Embedded Metric Format (`--metrics-emf`, on AWS): after
//! two deliveries and a SIGTERM, its standard output holds an EMF document under the namespace
//! with the deliveries counted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emf_lines_count_the_deliveries() {
    let dir = data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pushmail"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "--demo"])
        .args(["--metrics-emf", "PushmailTest"])
        .args(["--subscribe-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-addr", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--smtp-addr",
            "127.0.0.1:0",
            "--submission-addr",
            "127.0.0.1:0",
        ])
        .args(["--imap-addr", "127.0.0.1:0", "--imaps-addr", "127.0.0.1:0"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushmail starts");
    // Every line of its output, read to the end on a thread of its own.
    let (lines, output) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let smtp = loop {
        let line = output
            .recv_timeout(Duration::from_secs(30))
            .expect("the addresses");
        seen.push(line.clone());
        if let Some(address) = line.strip_prefix("SMTP:") {
            break address.trim().to_owned();
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&smtp).await.is_err() {
        assert!(Instant::now() < deadline, "SMTP did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..2 {
        let answer = smtp_send(&smtp, &format!("emf {n}")).await;
        assert!(answer.starts_with("250"), "{answer}");
    }
    // SIGTERM: the last minute's metrics are written on the way out.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    seen.extend(output.try_iter());
    let documents: Vec<Value> = seen
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect();
    let delivered: f64 = documents
        .iter()
        .filter(|doc| doc["outcome"] == "stored")
        .filter_map(|doc| doc.get("pushmail_deliveries_total")?.as_f64())
        .sum();
    assert_eq!(delivered, 2.0, "{seen:#?}");
    let namespaces: Vec<&Value> = documents
        .iter()
        .flat_map(|doc| {
            doc["_aws"]["CloudWatchMetrics"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .map(|metrics| &metrics["Namespace"])
        .collect();
    assert!(
        namespaces.iter().all(|n| *n == "PushmailTest"),
        "{namespaces:?}"
    );
}

/// One message to alice; the final reply.
async fn smtp_send(smtp: &str, subject: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(reader).lines();
    let mut last = String::new();
    let read = async |lines: &mut tokio::io::Lines<_>| -> String {
        loop {
            let line: String = lines.next_line().await.unwrap().unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    };
    read(&mut lines).await;
    for command in [
        "EHLO emf.test".to_owned(),
        "MAIL FROM:<e@emf.test>".to_owned(),
        "RCPT TO:<alice@example.com>".to_owned(),
        "DATA".to_owned(),
        format!("Subject: {subject}\r\n\r\nbody\r\n."),
    ] {
        writer
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        last = read(&mut lines).await;
    }
    writer.write_all(b"QUIT\r\n").await.unwrap();
    last
}
