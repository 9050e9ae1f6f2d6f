//! The admin API's listings paged on the embedded store: a domain's accounts beside another
//! domain's as many, and the audit log, read page by page to the end. What a page costs should
//! not grow with how far into the listing it is. A benchmark, run by hand (docs/benchmarks.md):
//!
//!     cargo bench -p pushmail --bench paging
//!     BENCH_ACCOUNTS=20000 cargo bench -p pushmail --bench paging

mod common;
use common::*;

use std::time::{Duration, Instant};

use pushmail_core::types::{Address, Domain, DomainName, now};
use pushmail_store::{AccountStore, DomainStore, EmbeddedStore};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let accounts = env_usize("BENCH_ACCOUNTS", 10_000);
    let page_size = env_usize("BENCH_PAGE", 100);
    let dir = tempfile::Builder::new()
        .prefix("pushmail-bench-paging-")
        .tempdir()
        .unwrap();
    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap();
    // Two domains, their accounts interleaved by address ("a…@one", "a…@two", …).
    let domains = ["one.example", "two.example"].map(|name| DomainName::parse(name).unwrap());
    for domain in &domains {
        store
            .create_domain(&Domain::new(domain.clone(), now()))
            .await
            .unwrap();
    }
    let setup = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    let store = std::sync::Arc::new(store);
    for i in 0..accounts {
        for domain in &domains {
            let (store, address) = (
                store.clone(),
                Address::parse(&format!("user{i:06}@{domain}")).unwrap(),
            );
            writes.spawn(async move { store.put_account(&account(address)).await.unwrap() });
        }
        if writes.len() >= 256 {
            while writes.join_next().await.is_some() {}
        }
    }
    while writes.join_next().await.is_some() {}
    println!(
        "{} accounts in 2 domains written in {:.1} s",
        accounts * 2,
        setup.elapsed().as_secs_f64()
    );

    let mut cursor: Option<String> = None;
    let mut times = Vec::new();
    let mut seen = 0;
    let all = Instant::now();
    loop {
        let started = Instant::now();
        let page = store
            .list_accounts(&domains[0], None, cursor.as_deref(), page_size)
            .await
            .unwrap();
        times.push(started.elapsed());
        seen += page.items.len();
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, accounts);
    report("accounts of one domain", page_size, &times, all.elapsed());
}

fn report(what: &str, page_size: usize, times: &[Duration], all: Duration) {
    let first = times.first().copied().unwrap_or_default();
    let last = times.last().copied().unwrap_or_default();
    let mut sorted = times.to_vec();
    sorted.sort();
    println!(
        "{what}: {} pages of {page_size} in {:.2} s; a page p50 {:?}, first {:?}, last {:?}",
        times.len(),
        all.as_secs_f64(),
        percentile(&sorted, 0.5),
        first,
        last
    );
}
