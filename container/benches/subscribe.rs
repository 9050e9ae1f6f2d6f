//! The Subscribe URL over HTTP on the embedded store: SUBSCRIBE, an exact replay, and UNSUBSCRIBE
//! for every account, from concurrent clients. Prints requests/s and p50/p99 latency per kind.
//! A benchmark, run by hand (numbers in docs/benchmarks.md):
//!
//!     cargo bench -p pushmail --bench subscribe
//!     BENCH_ACCOUNTS=2000 BENCH_CLIENTS=32 cargo bench -p pushmail --bench subscribe
//!
//! Every account shares one argon2id hash (19 MiB, 2 passes, 1 lane: the production parameters),
//! made once, so setting up 10,000 accounts does not dominate; every SUBSCRIBE still verifies
//! its password against it, as in production.

mod common;
use common::*;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pushmail_core::password::hash_password;
use pushmail_core::protocol::sign;
use pushmail_core::types::{Account, Address, now};
use pushmail_push::mailer::StoreMailer;
use pushmail_runtime::seed::Seed;
use pushmail_store::{EmbeddedStore, Store};
use serde_json::json;

const SECRET: &str = "bench-secret";
const PASSWORD: &str = "bench-password";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let accounts = env_usize("BENCH_ACCOUNTS", 10_000);
    let clients = env_usize("BENCH_CLIENTS", 32);
    let dir = tempfile::Builder::new()
        .prefix("pushmail-bench-")
        .tempdir()
        .unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap());
    let push = pushmail_runtime::Services::new(
        store.clone(),
        Arc::new(StoreMailer::new(
            store.clone(),
            "pushmail <push@bench.example>",
        )),
        Arc::new(pushmail_push::resolver::SystemResolver),
        true,
    )
    .push();

    let setup = Instant::now();
    pushmail_runtime::seed::seed(
        &store,
        &Seed {
            account: Address::parse("user0@bench.example").unwrap(),
            password: PASSWORD.into(),
            secret: SECRET.into(),
            subscribe_url: "http://127.0.0.1/subscribe".into(),
            smtp_server: "127.0.0.1".into(),
        },
    )
    .await
    .unwrap();
    let hash = hash_password(PASSWORD).unwrap();
    for i in 0..accounts {
        store
            .put_account(&Account {
                address: Address::parse(&format!("user{i}@bench.example")).unwrap(),
                password_hash: hash.clone(),
                enabled: true,
                display_name: None,
                pushed_folders: vec![],
                created_at: now(),
                revision: 0,
                quota_bytes: None,
                sender_aliases: Vec::new(),
                filing_rules: Vec::new(),
            })
            .await
            .unwrap();
    }
    let heartbeat = store.clone();
    tokio::spawn(async move {
        loop {
            heartbeat
                .record_heartbeat("imap", "bench", now())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    println!(
        "setup: {accounts} accounts in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/subscribe", listener.local_addr().unwrap());
    let app = pushmail_push::router(push).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (next, url) = (next.clone(), url.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies: [Vec<Duration>; 3] = Default::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= accounts {
                        return latencies;
                    }
                    let email = format!("user{i}@bench.example");
                    let subscribe = json!({"type": "SUBSCRIBE", "email": email, "password": PASSWORD,
                        "registration": format!("r-{i}"), "generation": 1, "callback": "https://push.example.net/n"});
                    let unsubscribe = json!({"type": "UNSUBSCRIBE", "email": email, "registration": format!("r-{i}"), "generation": 1});
                    let now = now().timestamp();
                    // The replay is the same body, so it is signed with another timestamp.
                    for (kind, (body, timestamp, expect)) in [
                        (&subscribe, now, "subscribed"),
                        (&subscribe, now - 1, "subscribed"),
                        (&unsubscribe, now, "unsubscribed"),
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let bytes = serde_json::to_vec(body).unwrap();
                        let sent = Instant::now();
                        let answer: serde_json::Value = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-push-timestamp", timestamp.to_string())
                            .header("x-push-signature", sign(SECRET.as_bytes(), timestamp, &bytes))
                            .body(bytes)
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        latencies[kind].push(sent.elapsed());
                        assert_eq!(answer["status"], expect, "{answer}");
                    }
                }
            })
        })
        .collect();
    let mut all: [Vec<Duration>; 3] = Default::default();
    for worker in workers {
        for (kind, latencies) in worker.await.unwrap().into_iter().enumerate() {
            all[kind].extend(latencies);
        }
    }
    let elapsed = started.elapsed();
    let requests: usize = all.iter().map(Vec::len).sum();
    println!(
        "{requests} requests ({accounts} accounts x SUBSCRIBE, replay, UNSUBSCRIBE) from {clients} clients in {:.1} s: {:.0} requests/s",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    for (kind, name) in ["SUBSCRIBE", "replay", "UNSUBSCRIBE"].iter().enumerate() {
        all[kind].sort();
        println!(
            "{name:<12} p50 {:>7.1} ms   p99 {:>7.1} ms",
            percentile(&all[kind], 0.50).as_secs_f64() * 1e3,
            percentile(&all[kind], 0.99).as_secs_f64() * 1e3
        );
    }
}
