//! The notice dispatcher's fairness: a pass works the accounts whose oldest notice is due, so
//! one account's backlog behind a dead callback, or many accounts waiting for their retries,
//! never hide an account whose notice is due; deliveries racing two dispatchers strand no
//! notice; and notices kept before the due order existed are found. Before, a pass read the
//! first batch of notices in account order, and an account sorted after a full batch of
//! waiting ones never heard of its mail.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use pushmail_core::types::Address;
use pushmail_push::dispatcher::{DispatchSettings, Dispatcher};
use pushmail_store::{NoticeStore, Store};
use pushmail_tests::{CallbackSink, Harness, HeldDynamo, on_dynamodb};
use std::sync::Arc;

/// The activation mail lands in INBOX too, and is announced like any other mail.
const ACTIVATION: &str = "Email activation information (push mail)";
/// Notices read per pass in these tests: a backlog of more than this is what hid others.
const BATCH: usize = 10;

fn subjects(sink: &CallbackSink) -> Vec<String> {
    sink.accepted_subjects()
}

/// A dispatcher reading `BATCH` a pass whose retries come an hour later: a failed notice
/// waits for the rest of the test.
fn patient_dispatcher(h: &Harness) -> Arc<Dispatcher> {
    h.dispatcher_with(|settings: &mut DispatchSettings| {
        settings.batch = BATCH;
        settings.retry.first_retry = Duration::from_secs(3600);
        settings.retry.max_retry = Duration::from_secs(3600);
    })
}

/// One pass, and every task it started finished.
async fn pass(dispatcher: &Arc<Dispatcher>) {
    dispatcher.clone().pass(Utc::now()).await.unwrap();
    dispatcher.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_accounts_backlog_hides_no_other_account() {
    let h = Harness::start().await;
    // Alice sorts first: her notices came first in the old pass's read.
    let (alice, bob) = (h.account("a-alice").await, h.account("z-bob").await);
    let (down, up) = (
        CallbackSink::start(503).await,
        CallbackSink::start(200).await,
    );
    h.integrate(&alice, &down, "r-alice", 1).await;
    h.integrate(&bob, &up, "r-bob", 1).await;
    let dispatcher = patient_dispatcher(&h);
    pass(&dispatcher).await;
    assert_eq!(subjects(&up), [ACTIVATION]);
    assert_eq!(down.received().len(), 1, "alice's oldest tried, and failed");

    // A day of mail behind her dead callback: two hundred times the batch (fewer on moto).
    let backlog = if on_dynamodb() {
        4 * BATCH
    } else {
        200 * BATCH
    };
    for i in 0..backlog {
        h.deliver_mail(&alice, "INBOX", &format!("backlog {i}"))
            .await;
    }
    h.deliver_mail(&bob, "INBOX", "for bob").await;
    pass(&dispatcher).await;
    assert_eq!(subjects(&up), [ACTIVATION, "for bob"]);
    assert_eq!(
        down.received().len(),
        1,
        "her backlog waits behind her oldest"
    );
    assert_eq!(
        h.store
            .due_notice_accounts(Utc::now(), BATCH)
            .await
            .unwrap(),
        Vec::<Address>::new(),
        "nobody is due"
    );
    assert_eq!(
        h.store
            .due_notice_accounts(Utc::now() + chrono::Duration::hours(2), BATCH)
            .await
            .unwrap(),
        vec![alice],
        "alice once, at her retry"
    );
    let oldest = h.store.oldest_waiting_notice().await.unwrap();
    assert!(oldest.is_some_and(|at| at <= Utc::now()), "{oldest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_accounts_waiting_for_retries_hide_no_due_account() {
    let h = Harness::start().await;
    let down = CallbackSink::start(503).await;
    let waiting = 2 * BATCH + 5;
    for i in 0..waiting {
        let account = h.account(&format!("a-{i:02}")).await;
        h.integrate(&account, &down, &format!("r-{i}"), 1).await;
    }
    let dispatcher = patient_dispatcher(&h);
    // A pass takes a batch of the due accounts: every one is tried once within three.
    for _ in 0..3 {
        pass(&dispatcher).await;
    }
    assert_eq!(down.received().len(), waiting, "each tried once");

    let up = CallbackSink::start(200).await;
    let late = h.account("z-late").await;
    h.integrate(&late, &up, "r-late", 1).await;
    pass(&dispatcher).await;
    assert_eq!(subjects(&up), [ACTIVATION]);
    assert_eq!(down.received().len(), waiting, "none retried early");
}

/// Deliveries from four tasks race two dispatchers (two processes) that hear of them only from
/// the store: every notice arrives once, each task's in the order it delivered them, and the
/// due order is empty at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_deliveries_and_dispatchers_strand_no_notice() {
    let h = Arc::new(Harness::start().await);
    let up = CallbackSink::start(200).await;
    let accounts = [h.account("alice").await, h.account("bob").await];
    for (i, account) in accounts.iter().enumerate() {
        h.integrate(account, &up, &format!("r-{i}"), 1).await;
    }
    let (one, two) = (h.dispatcher(), h.dispatcher());
    let workers = [
        tokio::spawn(one.clone().run(std::future::pending())),
        tokio::spawn(two.clone().run(std::future::pending())),
    ];
    let per_task = 15;
    let deliveries: Vec<_> = (0..4)
        .map(|task| {
            let (h, accounts) = (h.clone(), accounts.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    let account = &accounts[i % 2];
                    h.deliver_mail(account, "INBOX", &format!("task {task} mail {i:02}"))
                        .await;
                }
            })
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    let expected = 2 + 4 * per_task;
    up.wait_for("every notice", |got| got.len() >= expected)
        .await;
    // Any notice sent twice would show now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = subjects(&up);
    assert_eq!(got.len(), expected, "each once: {got:?}");
    let mut last_seen: HashMap<(String, usize), usize> = HashMap::new();
    for subject in got.iter().filter(|s| s.starts_with("task ")) {
        let mut words = subject.split(' ');
        let task = words.nth(1).unwrap().to_owned();
        let i: usize = words.nth(1).unwrap().parse().unwrap();
        // Per task and account, in the order delivered.
        if let Some(before) = last_seen.insert((task, i % 2), i) {
            assert!(before < i, "{subject} after mail {before}: {got:?}");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.store.oldest_waiting_notice().await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the due order still names an account with nothing pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.store
            .due_notice_accounts(Utc::now() + chrono::Duration::days(2), BATCH)
            .await
            .unwrap()
            .is_empty()
    );
    for worker in workers {
        worker.abort();
    }
}

/// A delivery that lands between the dispatcher's reads for its settle of the account and the
/// settle's write leaves the account in the due order. The settle reads the account's queue item
/// and its oldest notice, then writes what they say only if no write came between (on DynamoDB,
/// where the order is not kept in the notices' own transactions). Written regardless, a settle
/// that found nothing pending would take the account out of the order just after the delivery
/// put it in, and the new notice would never be sent. The settle's write is held at an endpoint
/// in front of the table while the delivery is made, then let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_between_a_settles_reads_and_its_write_keeps_the_account_due() {
    let h = Harness::start().await;
    let up = CallbackSink::start(200).await;
    let alice = h.account("alice").await;
    h.integrate(&alice, &up, "r-alice", 1).await;
    // What a sent notice leaves: the account's place, due at once, with nothing pending.
    for notice in h.store.account_pending_notices(&alice, 10).await.unwrap() {
        h.store.notice_delivered(&notice, Utc::now()).await.unwrap();
    }
    // The table's one backfill of the orders (which settles every account with notices) done
    // now, so that the reads below see what the race left.
    h.store
        .due_notice_accounts(Utc::now(), BATCH)
        .await
        .unwrap();
    match &h.test_store().table {
        Some(_) => {
            let endpoint = HeldDynamo::start().await;
            let settling = endpoint.store(h.test_store()).await;
            let mut write = endpoint.hold_next(&["DeleteItem", "UpdateItem"], "NOTICEQUEUE");
            let settle = {
                let alice = alice.clone();
                tokio::spawn(async move { settling.settle_notice_queue(&alice).await })
            };
            write.reached().await;
            h.deliver_mail(&alice, "INBOX", "between").await;
            write.release();
            settle.await.unwrap().unwrap();
        }
        // Kept in the notices' own transactions: no settle can come between.
        None => {
            h.store.settle_notice_queue(&alice).await.unwrap();
            h.deliver_mail(&alice, "INBOX", "between").await;
        }
    }
    let pending = h.store.account_pending_notices(&alice, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "the delivery's notice: {pending:?}");
    let due = h
        .store
        .due_notice_accounts(Utc::now() + chrono::Duration::days(2), BATCH)
        .await
        .unwrap();
    assert_eq!(due, [alice], "the account is due with its notice pending");
    assert!(h.store.oldest_waiting_notice().await.unwrap().is_some());
    let dispatcher = h.dispatcher();
    pass(&dispatcher).await;
    assert_eq!(
        subjects(&up),
        ["between"],
        "taken above: the activation notice"
    );
}

/// Notices kept by a version without the due order (its index items or tables gone) are found
/// by the first pass, and sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notices_kept_before_the_due_order_are_found() {
    let h = Harness::start().await;
    let up = CallbackSink::start(200).await;
    let (alice, bob) = (h.account("alice").await, h.account("bob").await);
    h.integrate(&alice, &up, "r-alice", 1).await;
    h.integrate(&bob, &up, "r-bob", 1).await;
    h.deliver_mail(&alice, "INBOX", "kept").await;
    let store: Arc<dyn Store> = match h.test_store().table.clone() {
        Some(table) => {
            forget_queue_items(&table).await;
            h.store.clone()
        }
        None => reopened_without_orders(&h),
    };
    let mut due = store.due_notice_accounts(Utc::now(), BATCH).await.unwrap();
    due.sort();
    let mut expected = vec![alice, bob];
    expected.sort();
    assert_eq!(due, expected);
    if h.test_store().table.is_some() {
        pass(&h.dispatcher()).await;
        assert_eq!(subjects(&up).len(), 3, "{:?}", subjects(&up));
    }
}

/// Deletes the accounts' queue items, as a table written before them holds none.
async fn forget_queue_items(table: &str) {
    let client = aws_sdk_dynamodb::Client::new(&pushmail_tests::sdk_config().await);
    let items = client
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let mut forgotten = 0;
    for item in items {
        if item
            .get("sk")
            .and_then(|sk| sk.as_s().ok())
            .map(String::as_str)
            != Some("NOTICEQUEUE")
        {
            continue;
        }
        client
            .delete_item()
            .table_name(table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .send()
            .await
            .unwrap();
        forgotten += 1;
    }
    assert_eq!(forgotten, 2, "one queue item an account");
}

/// A copy of the harness's embedded file without the due and waiting orders, opened.
fn reopened_without_orders(h: &Harness) -> Arc<dyn Store> {
    let path = h.test_store().path().expect("an embedded file");
    let copy = path.with_file_name("copy.redb");
    std::fs::copy(&path, &copy).unwrap();
    {
        let db = redb::Database::open(&copy).unwrap();
        let txn = db.begin_write().unwrap();
        for name in ["notice_due", "notice_waiting", "notice_heads"] {
            let table: redb::TableDefinition<&str, &str> = redb::TableDefinition::new(name);
            assert!(txn.delete_table(table).unwrap(), "{name}");
        }
        txn.commit().unwrap();
    }
    Arc::new(pushmail_store::EmbeddedStore::open(&copy).unwrap())
}
