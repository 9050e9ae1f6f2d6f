//! New-mail notices on the embedded store in one process: from SMTP's 250 to the notice at a
//! loopback receiver (p50/p99, with the 250 not waiting on the receiver), and notices/s
//! sustained with 1,000 integrated accounts. A benchmark, run by hand (docs/benchmarks.md):
//!
//!     cargo bench -p pushmail --bench notice
//!     BENCH_ACCOUNTS=1000 BENCH_MESSAGES=5000 cargo bench -p pushmail --bench notice

mod common;
use common::*;
use pushmail_core::hints::Arrivals;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pushmail_core::network::CallbackPolicy;
use pushmail_core::types::{
    ActivationJob, ActivationState, Address, Domain, DomainName, Link, LinkState, PushSecret, now,
};
use pushmail_listener::Limits;
use pushmail_push::dispatcher::{DispatchSettings, Dispatcher};
use pushmail_push::notifier::HttpNotifier;
use pushmail_push::resolver::SystemResolver;
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_store::{EmbeddedStore, Store};
use tokio::io::{AsyncWriteExt, BufReader};

/// When each subject's 250 came, and when its notice came.
type Times = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let accounts = env_usize("BENCH_ACCOUNTS", 1000);
    let messages = env_usize("BENCH_MESSAGES", 3000);
    let sessions = env_usize("BENCH_SESSIONS", 10);
    let dir = tempfile::Builder::new()
        .prefix("pushmail-bench-notice-")
        .tempdir()
        .unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap());

    // The receiver: notes when each notice arrives, answers 200.
    let noticed: Times = Arc::default();
    let at_receiver = noticed.clone();
    let handler = move |body: axum::body::Bytes| {
        let noticed = at_receiver.clone();
        async move {
            let notice: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if let Some(subject) = notice["subject"].as_str() {
                noticed
                    .lock()
                    .unwrap()
                    .insert(subject.to_owned(), Instant::now());
            }
            axum::http::StatusCode::OK
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/n/{id}", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let domain = DomainName::parse("bench.example").unwrap();
    store
        .put_domain(&Domain::new(domain.clone(), now()))
        .await
        .unwrap();
    let secret = PushSecret {
        id: "ps_bench".into(),
        value: "bench-secret".into(),
        created_at: now(),
    };
    store.add_push_secret(&domain, &secret, 2).await.unwrap();
    let started = Instant::now();
    for i in 0..accounts {
        let address = Address::parse(&format!("user{i}@bench.example")).unwrap();
        let account = account(address.clone());
        store.put_account(&account).await.unwrap();
        store.create_default_folders(&address, now()).await.unwrap();
        let link = Link {
            address: address.clone(),
            subscription_id: format!("sub_{i}"),
            registration: format!("r-{i}"),
            generation: 1,
            callback: format!("http://{receiver}/n/{i}"),
            device: None,
            state: LinkState::Linked,
            activation: ActivationState::Sent,
            linked_at: now(),
            unlinked_at: None,
        };
        let job = ActivationJob {
            subscription_id: link.subscription_id.clone(),
            address: address.clone(),
            device: None,
            linked_at: now(),
            attempts: 0,
            not_before: now(),
        };
        store
            .insert_link(&link, &job, &account, now())
            .await
            .unwrap();
        store
            .discard_activation(&link.subscription_id)
            .await
            .unwrap();
    }
    println!(
        "setup: {accounts} integrated accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let notifier = HttpNotifier::new(
        Duration::from_secs(5),
        Duration::from_secs(10),
        Arc::new(SystemResolver),
        CallbackPolicy { local_mode: true },
    );
    let dispatcher = Dispatcher::new(
        store.clone(),
        Arc::new(notifier),
        DispatchSettings::default(),
    );
    tokio::spawn(dispatcher.clone().run(std::future::pending()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = listener.local_addr().unwrap();
    let inbound = Smtp::inbound(store.clone(), SmtpSettings::default())
        .with_arrivals(Arrivals::default().waking(dispatcher.waker()));
    tokio::spawn(pushmail_listener::serve(
        listener,
        Arc::new(inbound),
        Limits {
            max_connections_per_source: 64,
            ..Limits::default()
        },
        std::future::pending(),
    ));

    let acknowledged: Times = Arc::default();
    let started = Instant::now();
    let share = messages / sessions;
    let runs: Vec<_> = (0..sessions)
        .map(|s| {
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(smtp).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (reader, mut writer) = stream.into_split();
                let mut reader = BufReader::new(reader);
                reply(&mut reader).await;
                writer.write_all(b"EHLO bench\r\n").await.unwrap();
                reply(&mut reader).await;
                for n in s * share..(s + 1) * share {
                    let subject = format!("bench {n}");
                    let transaction = format!(
                        "MAIL FROM:<b@sender.example>\r\nRCPT TO:<user{}@bench.example>\r\nDATA\r\n",
                        n % accounts
                    );
                    writer.write_all(transaction.as_bytes()).await.unwrap();
                    for _ in 0..3 {
                        reply(&mut reader).await;
                    }
                    let body = format!("From: b@sender.example\r\nSubject: {subject}\r\n\r\nhi\r\n.\r\n");
                    writer.write_all(body.as_bytes()).await.unwrap();
                    let answer = reply(&mut reader).await;
                    assert!(answer.starts_with("250"), "{answer}");
                    acknowledged.lock().unwrap().insert(subject, Instant::now());
                }
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap();
    }
    let sent = share * sessions;
    let deadline = Instant::now() + Duration::from_secs(300);
    while noticed.lock().unwrap().len() < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let (acked, got) = (acknowledged.lock().unwrap(), noticed.lock().unwrap());
    let mut latencies: Vec<Duration> = acked
        .iter()
        .filter_map(|(subject, at)| got.get(subject).map(|n| n.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    println!(
        "{sent} messages from {sessions} SMTP sessions to {accounts} integrated accounts: {} notices in {:.1} s, {:.0} notices/s",
        got.len(),
        elapsed.as_secs_f64(),
        got.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "250 -> notice received: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
}
