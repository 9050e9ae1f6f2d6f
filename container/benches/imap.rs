//! The IMAP listener, measured on the real `pushmail` process (embedded store, durable):
//!
//! - memory per idle session: N sessions each LOGIN, SELECT an INBOX of 200 messages and IDLE,
//!   plaintext and over TLS (IMAPS); the server's resident memory before and after, over N;
//! - SMTP 250 → `* EXISTS` at an idler, p50/p99, in one process;
//! - FETCH of 1,000 messages (whole bodies, and ENVELOPE + FLAGS);
//! - APPEND throughput, one session and ten.
//!
//! A benchmark, run by hand (docs/benchmarks.md):
//!
//!     cargo bench -p pushmail --bench imap
//!     BENCH_SESSIONS=10000 cargo bench -p pushmail --bench imap
//!
//! Across two processes (DynamoDB and SNS/SQS on moto): `infra/bench/imap_two_processes.sh`.

mod common;
mod imap_client;
use common::*;
use imap_client::*;

use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sessions = env_usize("BENCH_SESSIONS", 1000);
    println!("## Memory per idle session (LOGIN, SELECT INBOX of 200, IDLE)\n");
    println!("| sessions | transport | server RSS before | after | per session |");
    println!("|---|---|---|---|---|");
    for tls in [false, true] {
        // A fresh process each: memory freed by one run stays with the allocator.
        let server = Server::start(&[]).await;
        server.deliver_many(200, 4 * 1024).await;
        // Password checks and a SELECT first: argon2's working memory (19 MiB a check, four at
        // once) and the store's page cache stay afterwards and are not the sessions'.
        let mut warm = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let server = server.clone();
            warm.spawn(async move {
                let mut session = server.session(tls).await;
                session.login().await;
                session.command("SELECT INBOX").await;
            });
        }
        warm.join_all().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = server.rss_bytes();
        // Stage by stage, so the table says where the memory goes. Connected and logged in
        // together: a connection not logged in within a minute is logged out.
        let mut logged_in = Vec::with_capacity(sessions);
        let mut opening = tokio::task::JoinSet::new();
        // A few at a time: each login is an argon2 check, bounded per account.
        for _ in 0..sessions {
            if opening.len() >= 4
                && let Some(done) = opening.join_next().await
            {
                logged_in.push(done.unwrap());
            }
            let server = server.clone();
            opening.spawn(async move {
                let mut session = server.session(tls).await;
                session.login().await;
                session
            });
        }
        while let Some(done) = opening.join_next().await {
            logged_in.push(done.unwrap());
        }
        let after_login = server.rss_bytes();
        for session in &mut logged_in {
            session.command("SELECT INBOX").await;
        }
        let selected = server.rss_bytes();
        for session in &mut logged_in {
            session.idle().await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = server.rss_bytes();
        let kb = |from: u64, to: u64| to.saturating_sub(from) as f64 / sessions as f64 / 1024.0;
        println!(
            "| {sessions} | {} | {:.1} MB | {:.1} MB | {:.1} KB (connected and LOGIN {:.1}, SELECT {:.1}, IDLE {:.1}) |",
            if tls { "TLS (IMAPS)" } else { "plaintext" },
            before as f64 / 1e6,
            after as f64 / 1e6,
            kb(before, after),
            kb(before, after_login),
            kb(after_login, selected),
            kb(selected, after),
        );
        let idlers = logged_in;
        drop(idlers);
    }

    println!("\n## SMTP 250 → EXISTS at an idler (one process)\n");
    let server = Server::start(&[]).await;
    let latencies = server.exists_latencies(&server, 500).await;
    println!("| deliveries | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| {} | {:.2} ms | {:.2} ms |",
        latencies.len(),
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99))
    );

    println!("\n## FETCH of 1,000 messages (4 KB each)\n");
    let fetch = Server::start(&[]).await;
    fetch.deliver_many(1000, 4 * 1024).await;
    let mut session = fetch.session(false).await;
    session.login().await;
    session.command("SELECT INBOX").await;
    println!("| items | time | messages/s |");
    println!("|---|---|---|");
    for items in ["(UID FLAGS ENVELOPE)", "(UID BODY.PEEK[])"] {
        let started = Instant::now();
        let answer = session.command(&format!("UID FETCH 1:* {items}")).await;
        let elapsed = started.elapsed();
        assert!(
            answer.ends_with(" OK FETCH done\r\n"),
            "{}",
            &answer[answer.len() - 200..]
        );
        println!(
            "| {items} | {:.0} ms | {:.0} |",
            millis(elapsed),
            1000.0 / elapsed.as_secs_f64()
        );
    }

    println!("\n## APPEND of 4 KB messages\n");
    println!("| sessions | messages | messages/s |");
    println!("|---|---|---|");
    for parallel in [1, 10] {
        let total = 1000;
        let started = Instant::now();
        let mut appending = tokio::task::JoinSet::new();
        for _ in 0..parallel {
            let fetch = fetch.clone();
            appending.spawn(async move {
                let mut session = fetch.session(false).await;
                session.login().await;
                for n in 0..total / parallel {
                    session.append("INBOX", &message(4 * 1024, n)).await;
                }
            });
        }
        while let Some(done) = appending.join_next().await {
            done.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "| {parallel} | {total} | {:.0} |",
            total as f64 / elapsed.as_secs_f64()
        );
    }
}
