//! What the guards keep goes when it expires: a failed login from a new address (a source
//! counter, never reserved) or for an address nobody has (an account counter) must not leave a
//! row for good, or a peer rotating addresses grows the store without end. DynamoDB's TTL drops
//! items by their `expires_at`, so every counter must carry one; the embedded store drops
//! expired counters and replay entries as new ones come, a bounded number a write. A signature
//! remembered again after it expired stays guarded whatever the dropping does.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pushmail_core::types::Address;
use pushmail_store::credentials::check_credentials;
use pushmail_store::{FailureScope, Store, Surface};
use pushmail_tests::fixtures::with_mailbox_account;

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    a_signature_remembered_again_stays_guarded_while_old_entries_go,
);

async fn a_signature_remembered_again_stays_guarded_while_old_entries_go(
    (store, _): (Arc<dyn Store>, Address),
) {
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let ten_minutes = Duration::seconds(600);
    assert!(
        store
            .remember_signature("sig-a", t0, t0 + ten_minutes)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_signature("sig-a", t0, t0 + ten_minutes)
            .await
            .unwrap()
    );
    // Expired: taken again, and guarded anew.
    let t1 = t0 + Duration::seconds(700);
    assert!(
        store
            .remember_signature("sig-a", t1, t1 + ten_minutes)
            .await
            .unwrap()
    );
    // Another signature's write drops what expired before t1: the old note of sig-a, not it.
    assert!(
        store
            .remember_signature("sig-b", t1, t1 + ten_minutes)
            .await
            .unwrap()
    );
    let t2 = t1 + Duration::seconds(10);
    assert!(
        !store
            .remember_signature("sig-a", t2, t2 + ten_minutes)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remember_signature("sig-b", t2, t2 + ten_minutes)
            .await
            .unwrap()
    );
}

fn source(n: usize) -> String {
    format!("198.{}.{}.{}", 18 + n / 65_536, (n / 256) % 256, n % 256)
}

/// Five thousand failures from addresses never seen again, then a day later five thousand from
/// others: the first day's counters are gone, the second's are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_counters_go_as_new_ones_come_embedded() {
    let test_store = pushmail_tests::embedded_store();
    let store = test_store.store.clone();
    let day_one = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let day_two = day_one + Duration::days(1);
    fail_from(&store, 0..5_000, day_one).await;
    assert_eq!(failures_from(&store, 0, day_one).await, 1);
    fail_from(&store, 5_000..10_000, day_two).await;
    for n in (0..5_000).step_by(7) {
        assert_eq!(failures_from(&store, n, day_one).await, 0, "{}", source(n));
    }
    for n in (5_000..10_000).step_by(7) {
        assert_eq!(failures_from(&store, n, day_two).await, 1, "{}", source(n));
    }
}

/// One failure from each of `sources`, in the window starting `at`, as a login check counts it
/// (kept for two windows of fifteen minutes past it), fifty writers at once.
async fn fail_from(store: &Arc<dyn Store>, sources: std::ops::Range<usize>, at: DateTime<Utc>) {
    let expires = at + Duration::seconds(2_700);
    let sources: Vec<usize> = sources.collect();
    let writers = sources.chunks(sources.len().div_ceil(50)).map(|chunk| {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tokio::spawn(async move {
            for n in chunk {
                let source = source(n);
                let scope = FailureScope::Source(Surface::Imap, &source);
                store.count_failure(&scope, at, expires, at).await.unwrap();
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
}

async fn failures_from(store: &Arc<dyn Store>, n: usize, at: DateTime<Utc>) -> u32 {
    let source = source(n);
    let scope = FailureScope::Source(Surface::Imap, &source);
    store.failures(&scope, at).await.unwrap()
}

/// A wrong password for an address nobody has, from a new source: each counter the check
/// leaves in the table carries the `expires_at` DynamoDB's TTL drops it by.
#[tokio::test]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn every_rate_counter_carries_its_expiry_on_dynamodb() {
    let test_store = pushmail_tests::dynamo_store().await;
    let table = test_store.table.clone().expect("a DynamoDB table");
    let nobody = Address::parse("nobody@x.example").unwrap();
    for surface in [Surface::Imap, Surface::Submission] {
        let checked = check_credentials(
            test_store.store.as_ref(),
            surface,
            &nobody,
            "guess",
            Some("192.0.2.77"),
            Utc::now(),
        )
        .await;
        assert!(checked.is_err());
    }
    let client = aws_sdk_dynamodb::Client::new(&pushmail_tests::sdk_config().await);
    let items = client
        .scan()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let counters: Vec<_> = items
        .iter()
        .filter(|item| {
            item.get("pk")
                .and_then(|pk| pk.as_s().ok())
                .is_some_and(|pk| pk.starts_with("RATE#"))
        })
        .collect();
    // Per surface, the account's and the source's.
    assert_eq!(counters.len(), 4, "{counters:?}");
    for counter in counters {
        let expires = counter.get("expires_at").and_then(|v| v.as_n().ok());
        let expires: i64 = expires.expect("expires_at").parse().unwrap();
        assert!(expires > Utc::now().timestamp(), "{counter:?}");
    }
}
