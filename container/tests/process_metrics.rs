//! The process's metrics as CloudWatch Embedded Metric Format (`--metrics-emf`, on AWS): after
//! two deliveries and a SIGTERM, its standard output holds an EMF document under the namespace
//! with the deliveries counted.

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emf_lines_count_the_deliveries() {
    let dir = data_dir();
    let mut process = launch_with(dir.path(), &["--metrics-emf", "PushmailTest"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&process.smtp).await.is_err() {
        assert!(Instant::now() < deadline, "SMTP did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for n in 0..2 {
        let answer = smtp_send(&process.smtp, &format!("emf {n}")).await;
        assert!(answer.starts_with("250"), "{answer}");
    }
    // SIGTERM: the last minute's metrics are written on the way out.
    terminate(&process);
    exit_within(&mut process, Duration::from_secs(40)).await;
    let seen = printed(&process);
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
    reply_line(&mut lines).await;
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
        last = reply_line(&mut lines).await;
    }
    writer.write_all(b"QUIT\r\n").await.unwrap();
    last
}
