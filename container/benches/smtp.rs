//! The SMTP inbound listener on the embedded store, durable (each 250 after the redb commit):
//! messages/s and p50/p99 time from the end of DATA to the 250, at 1, 10 and 50 parallel
//! sessions, with 4 KB and 100 KB messages. A benchmark, run by hand (docs/benchmarks.md):
//!
//!     cargo bench -p pushmail --bench smtp
//!     BENCH_MESSAGES=5000 cargo bench -p pushmail --bench smtp
//!
//! Each session sends its share of the messages one after another (MAIL, RCPT and DATA
//! pipelined, as PIPELINING allows), to one of 50 accounts.

mod common;
use common::*;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pushmail_core::types::{Address, Domain, DomainName, now};
use pushmail_listener::Limits;
use pushmail_smtp::SmtpSettings;
use pushmail_store::{EmbeddedStore, Store};
use tokio::io::{AsyncWriteExt, BufReader};

const ACCOUNTS: usize = 50;

/// A message of about `size` octets: a header and 76-character lines.
fn message(size: usize, n: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: bench@sender.example\r\nTo: someone@bench.example\r\nSubject: bench {n}\r\n\
         Message-ID: <{n}@sender.example>\r\n\r\n"
    )
    .into_bytes();
    let line = [b'x'; 76];
    while raw.len() + 78 < size {
        raw.extend_from_slice(&line);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b".\r\n");
    raw
}

/// One session sending `count` messages; the latency of each (end of DATA → 250).
async fn session(address: SocketAddr, first: usize, count: usize, size: usize) -> Vec<Duration> {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    assert!(reply(&mut reader).await.starts_with("220"));
    writer.write_all(b"EHLO bench.client\r\n").await.unwrap();
    assert!(reply(&mut reader).await.starts_with("250"));
    let mut latencies = Vec::with_capacity(count);
    for n in first..first + count {
        let to = format!("user{}@bench.example", n % ACCOUNTS);
        let envelope = format!("MAIL FROM:<bench@sender.example>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        writer.write_all(envelope.as_bytes()).await.unwrap();
        for code in ["250", "250", "354"] {
            let answer = reply(&mut reader).await;
            assert!(answer.starts_with(code), "{answer}");
        }
        let body = message(size, n);
        writer.write_all(&body).await.unwrap();
        let sent = Instant::now();
        let answer = reply(&mut reader).await;
        latencies.push(sent.elapsed());
        assert!(answer.starts_with("250"), "{answer}");
    }
    latencies
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let messages = env_usize("BENCH_MESSAGES", 2000);
    println!("| size | sessions | messages | messages/s | p50 to 250 | p99 to 250 |");
    println!("|---|---|---|---|---|---|");
    for size in [4 * 1024, 100 * 1024] {
        // Fewer large messages: the same bytes would take long for nothing new.
        let total = if size > 10_000 {
            messages / 4
        } else {
            messages
        };
        for sessions in [1, 10, 50] {
            let dir = tempfile::Builder::new()
                .prefix("pushmail-bench-smtp-")
                .tempdir()
                .unwrap();
            let store: Arc<dyn Store> =
                Arc::new(EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap());
            store
                .put_domain(&Domain::new(
                    DomainName::parse("bench.example").unwrap(),
                    now(),
                ))
                .await
                .unwrap();
            for i in 0..ACCOUNTS {
                let address = Address::parse(&format!("user{i}@bench.example")).unwrap();
                store.put_account(&account(address.clone())).await.unwrap();
                store.create_default_folders(&address, now()).await.unwrap();
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(pushmail_listener::serve(
                listener,
                Arc::new(pushmail_smtp::Smtp::inbound(store, SmtpSettings::default())),
                // The listener's own defaults: 50 sessions from one address (loopback here,
                // an upstream relay in life) must run without a 421.
                Limits::default(),
                async move {
                    let _ = stopped.await;
                },
            ));
            let share = total / sessions;
            let started = Instant::now();
            let runs: Vec<_> = (0..sessions)
                .map(|s| tokio::spawn(session(address, s * share, share, size)))
                .collect();
            let mut latencies = Vec::new();
            for run in runs {
                latencies.extend(run.await.unwrap());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            println!(
                "| {} KB | {sessions} | {} | {:.0} | {:.2} ms | {:.2} ms |",
                size / 1024,
                latencies.len(),
                latencies.len() as f64 / elapsed.as_secs_f64(),
                percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
                percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            );
            let _ = stop.send(());
            let _ = server.await;
        }
    }
}
