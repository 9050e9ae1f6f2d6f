//! The embedded relay queue at a size that would hurt: ten thousand messages waiting behind a
//! slow relay and a few due. A pass reads the due ones alone (it read and decoded the whole
//! queue on every pass before, one pass each time mail is queued); a queue kept by a version
//! without the due order gets it when the store is opened.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pushmail_core::types::Address;
use pushmail_store::{EmbeddedStore, RelayJob, Store};

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
    }
    // As a version without the due order left the file: the order table gone.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let order: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("relay_due");
        assert!(txn.delete_table(order).unwrap());
        txn.commit().unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
    let due = store
        .due_relays(now + Duration::minutes(2), 32)
        .await
        .unwrap();
    assert_eq!(ids(&due), ["job-10002"]);
    assert_eq!(store.due_relays(later, 20_000).await.unwrap().len(), 10_001);
}
