//! The queues that fall due, at sizes that would hurt: thousands of messages waiting behind a
//! slow relay and a few due. A pass reads the due ones alone, the longest due first (it read
//! the whole queue on every pass before, one pass each time mail is queued: on the embedded
//! store by decoding it, on DynamoDB through a filter); the activation outbox alike. A queue
//! kept by a version without the due order gets it: when the embedded file is opened, on
//! DynamoDB at the first pass of a process.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use pushmail_core::types::Address;
use pushmail_smtp::RelayPolicy;
use pushmail_store::{EmbeddedStore, RelayJob, Store};
use pushmail_tests::fixtures::{insert, link};
use pushmail_tests::smtp::Sink;
use pushmail_tests::{HeldDynamo, on_dynamodb};

async fn plain_store(store: Arc<dyn Store>) -> Arc<dyn Store> {
    store
}

pushmail_tests::on_both_backends!(
    plain_store;
    relay_jobs_come_due_longest_first_out_of_a_long_queue,
    activation_mails_come_due_longest_first,
);

fn job(n: usize, not_before: DateTime<Utc>) -> RelayJob {
    RelayJob {
        id: format!("job-{n:05}"),
        sender: Address::parse("alice@example.com").unwrap(),
        recipients: vec![Address::parse("bob@remote.example").unwrap()],
        created_at: not_before - Duration::minutes(1),
        not_before,
        attempts: 0,
        last_error: None,
    }
}

/// Queues `jobs`, fifty writers at once.
async fn enqueue(store: &Arc<dyn Store>, jobs: Vec<RelayJob>) {
    let writers = jobs.chunks(jobs.len().div_ceil(50)).map(|chunk| {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tokio::spawn(async move {
            for job in chunk {
                store
                    .enqueue_relay(&job, b"Subject: out\r\n\r\nhi\r\n")
                    .await
                    .unwrap();
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
}

fn ids(jobs: &[RelayJob]) -> Vec<&str> {
    jobs.iter().map(|job| job.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pass_reads_the_due_jobs_of_a_long_queue_and_an_old_queue_gets_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushmail.redb");
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let later = now + Duration::hours(1);
    let activation = link("old@outbox.example", "r", 1, now);
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
        let waiting: Vec<RelayJob> = (0..10_000).map(|n| job(n, later)).collect();
        enqueue(&store, waiting).await;
        enqueue(
            &store,
            vec![job(10_001, now), job(10_002, now - Duration::seconds(5))],
        )
        .await;
        let due = store.due_relays(now, 32).await.unwrap();
        assert_eq!(ids(&due), ["job-10002", "job-10001"], "due longest first");
        // Claimed, a job is out of the order until its lease ends; deferred, back at its time.
        let lease = now + Duration::minutes(15);
        assert!(
            store
                .claim_relay("job-10002", now, lease)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            ids(&store.due_relays(now, 32).await.unwrap()),
            ["job-10001"]
        );
        let recipients = [Address::parse("bob@remote.example").unwrap()];
        store
            .defer_relay("job-10002", &recipients, now + Duration::minutes(2), "451")
            .await
            .unwrap();
        store.finish_relay("job-10001").await.unwrap();
        assert!(store.due_relays(now, 32).await.unwrap().is_empty());
        assert_eq!(store.due_relays(later, 20_000).await.unwrap().len(), 10_001);
        insert(&*store, &activation.0, &activation.1).await;
    }
    // As a version without the due order left the file: the order table gone.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        for name in ["relay_due", "activation_due"] {
            let order: redb::TableDefinition<&str, &str> = redb::TableDefinition::new(name);
            assert!(txn.delete_table(order).unwrap(), "{name}");
        }
        txn.commit().unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
    let due = store
        .due_relays(now + Duration::minutes(2), 32)
        .await
        .unwrap();
    assert_eq!(ids(&due), ["job-10002"]);
    assert_eq!(store.due_relays(later, 20_000).await.unwrap().len(), 10_001);
    assert_eq!(
        store.due_activations(now, 10).await.unwrap(),
        [activation.1]
    );
}

/// Forty due jobs, their ids in the reverse of their due order, behind a long queue of jobs due
/// in an hour: a pass of 32 takes the 32 longest due (the first found in the queue's own order
/// before); a lease, a deferral and a finish move a job in the order.
async fn relay_jobs_come_due_longest_first_out_of_a_long_queue(store: Arc<dyn Store>) {
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let later = now + Duration::hours(1);
    let waiting = if on_dynamodb() { 300 } else { 5_000 };
    enqueue(&store, (0..waiting).map(|n| job(n, later)).collect()).await;
    let due: Vec<RelayJob> = (0..40)
        .map(|k| RelayJob {
            id: format!("due-{k:02}"),
            ..job(0, now - Duration::seconds(k))
        })
        .collect();
    enqueue(&store, due).await;
    let longest_due: Vec<String> = (8..40).rev().map(|k| format!("due-{k:02}")).collect();
    assert_eq!(ids(&store.due_relays(now, 32).await.unwrap()), longest_due);

    let lease = now + Duration::minutes(15);
    assert!(
        store
            .claim_relay("due-39", now, lease)
            .await
            .unwrap()
            .is_some()
    );
    let due = store.due_relays(now, 100).await.unwrap();
    assert!(!ids(&due).contains(&"due-39"), "held by its lease");
    let recipients = [Address::parse("bob@remote.example").unwrap()];
    store
        .defer_relay("due-39", &recipients, now + Duration::minutes(2), "451")
        .await
        .unwrap();
    store.finish_relay("due-38").await.unwrap();
    let due = store.due_relays(now, 100).await.unwrap();
    assert_eq!(
        due.len(),
        38,
        "claimed and deferred, then finished: two out"
    );
    assert!(!ids(&due).contains(&"due-39") && !ids(&due).contains(&"due-38"));
    let due = store
        .due_relays(now + Duration::minutes(2), 100)
        .await
        .unwrap();
    assert!(ids(&due).contains(&"due-39"), "back at its retry");
    assert_eq!(
        store.due_relays(later, 20_000).await.unwrap().len(),
        waiting + 39
    );
}

/// Forty activation mails due, linked a second apart: a pass of 32 takes the 32 longest due,
/// oldest first; a deferral moves one to its retry.
async fn activation_mails_come_due_longest_first(store: Arc<dyn Store>) {
    let now = pushmail_core::types::now();
    let mut jobs = Vec::new();
    for k in 0..40 {
        let (l, job) = link(
            &format!("u{k:02}@due.example"),
            "r",
            1,
            now - Duration::seconds(k),
        );
        insert(&*store, &l, &job).await;
        jobs.push(job);
    }
    let due = store.due_activations(now, 32).await.unwrap();
    let longest_due: Vec<_> = jobs[8..].iter().rev().cloned().collect();
    assert_eq!(due, longest_due);
    let oldest = &jobs[39].subscription_id;
    store
        .defer_activation(oldest, now + Duration::minutes(1))
        .await
        .unwrap();
    let due = store.due_activations(now, 100).await.unwrap();
    assert_eq!(due.len(), 39);
    assert!(due.iter().all(|job| &job.subscription_id != oldest));
    assert_eq!(
        store
            .due_activations(now + Duration::minutes(1), 100)
            .await
            .unwrap()
            .len(),
        40
    );
}

/// Relay jobs and activation mails queued by a version without the due order (no index keys,
/// no mark that the table was filled in): another process's first pass finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn on_dynamodb_a_queue_kept_before_the_due_order_gets_it() {
    let test_store = pushmail_tests::dynamo_store().await;
    let store = test_store.store.clone();
    let now = pushmail_core::types::now();
    enqueue(&store, (0..3).map(|n| job(n, now)).collect()).await;
    let (l, activation) = link("old@queue.example", "r", 1, now);
    insert(&*store, &l, &activation).await;

    let table = test_store.table.clone().unwrap();
    let client = aws_sdk_dynamodb::Client::new(&pushmail_tests::sdk_config().await);
    let items = client.scan().table_name(&table).send().await.unwrap();
    let mut unplaced = 0;
    for item in items.items.unwrap_or_default() {
        let pk = item["pk"].as_s().unwrap();
        if pk == "QUEUES" {
            panic!("no pass ran yet, so the table is not marked: {item:?}");
        }
        if pk != "RELAY" && pk != "OUTBOX#activation" {
            continue;
        }
        assert!(
            item.contains_key("gsi2sk"),
            "queued with its place: {item:?}"
        );
        client
            .update_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("REMOVE gsi2pk, gsi2sk")
            .send()
            .await
            .unwrap();
        unplaced += 1;
    }
    assert_eq!(unplaced, 4);

    let next = test_store.another_process().await.unwrap();
    assert_eq!(
        ids(&next.due_relays(now, 10).await.unwrap()),
        ["job-00000", "job-00001", "job-00002"]
    );
    assert_eq!(next.due_activations(now, 10).await.unwrap(), [activation]);
    let mark = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("QUEUES".into()))
        .key("sk", AttributeValue::S("DUE_ORDER".into()))
        .send()
        .await
        .unwrap();
    assert!(mark.item.is_some(), "done once for the table");
}

/// On DynamoDB a pass finds the due jobs through an index, which can be a moment behind its
/// writes. A job this process has just queued is tried by the next pass all the same (the
/// queue keeps its id since the enqueue), not one poll period later, when the index has caught
/// up. Here the index answers nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn on_dynamodb_a_job_queued_here_goes_before_the_due_index_shows_it() {
    let test_store = pushmail_tests::dynamo_store().await;
    let endpoint = HeldDynamo::start().await;
    endpoint.lag_queries("DUE#relay");
    let store: Arc<dyn Store> = Arc::new(endpoint.store(&test_store).await);
    let sink = Sink::start().await;
    let outgoing = sink.relay(store.clone(), RelayPolicy::default());
    let now = Utc::now();
    let (alice, bob) = (
        Address::parse("alice@example.com").unwrap(),
        Address::parse("bob@remote.example").unwrap(),
    );
    assert!(store.due_relays(now, 32).await.unwrap().is_empty());
    outgoing
        .enqueue(
            "fresh-1",
            &alice,
            &[bob],
            b"Subject: out\r\n\r\nhi\r\n",
            now,
        )
        .await
        .unwrap();
    assert!(
        store.due_relays(now, 32).await.unwrap().is_empty(),
        "the index does not show it yet"
    );
    let pass = outgoing.work(now).await.unwrap();
    assert_eq!((pass.relayed, pass.deferred), (1, 0));
    assert_eq!(sink.received().len(), 1);
    assert_eq!(store.relay_body("fresh-1").await.unwrap(), None, "finished");
}
