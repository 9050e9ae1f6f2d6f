//! The change log keeps a window of each account's newest changes, on both backends: a client
//! that changes flags in a loop cannot grow it without bound, what it keeps has no hole up to
//! the newest change (also with writers racing), and a reader that fell out of it is told so
//! (`ChangesAfter::Lost`) rather than handed a log with changes missing. At a size that would
//! hurt (a hundred thousand changes) the log stays within its window.

use std::num::NonZeroU64;
use std::sync::Arc;

use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use pushmail_store::{ChangeWindow, ChangesAfter, Delivery, Store};
use pushmail_tests::embedded_store_with;
use pushmail_tests::fixtures::{inbox, new_message, with_mailbox_account};

const KEEP: u64 = 16;

fn window(keep: u64) -> ChangeWindow {
    ChangeWindow::keeping(NonZeroU64::new(keep).expect("not zero"))
}

/// Steps of an eighth of the window: the most the log holds beyond it.
fn most_held(keep: u64) -> usize {
    (keep + (keep / 8).max(1)) as usize
}

pushmail_tests::on_both_backends!(
    with_mailbox_account, keeping window(KEEP);
    the_log_keeps_its_window_and_tells_a_reader_that_fell_out,
    racing_writers_leave_a_bounded_log_without_holes,
);

/// Appends `count` messages to the INBOX: their UIDs.
async fn appended(store: &Arc<dyn Store>, alice: &Address, count: usize) -> Vec<u32> {
    let mut uids = Vec::new();
    for n in 0..count {
        let raw = format!("From: bob@example.org\r\nSubject: {n}\r\n\r\nhi\r\n");
        let stored = store.append(alice, &inbox(), &new_message(raw), None).await;
        let Ok(Delivery::Stored { uid, .. }) = stored else {
            panic!("not stored: {stored:?}");
        };
        uids.push(uid);
    }
    uids
}

/// The counters the log holds, checked to run without a hole up to the newest change.
async fn held(store: &Arc<dyn Store>, alice: &Address) -> Vec<u64> {
    let latest = store.latest_change(alice).await.unwrap();
    let counters: Vec<u64> = store
        .changes_since(alice, 0, 1_000_000)
        .await
        .unwrap()
        .iter()
        .map(|change| change.counter)
        .collect();
    assert_eq!(counters.last(), Some(&latest), "the newest change is kept");
    for pair in counters.windows(2) {
        assert_eq!(pair[0] + 1, pair[1], "a hole in the log: {counters:?}");
    }
    counters
}

fn toggle(round: usize) -> FlagChange {
    match round % 2 {
        0 => FlagChange::Add(vec!["\\Seen".into()]),
        _ => FlagChange::Remove(vec!["\\Seen".into()]),
    }
}

async fn the_log_keeps_its_window_and_tells_a_reader_that_fell_out(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let uids = appended(&store, &alice, 4).await;
    let ChangesAfter::Read(arrivals) = store.changes_after(&alice, 0, 100).await.unwrap() else {
        panic!("four changes are within the window");
    };
    assert_eq!(arrivals.len(), 4);
    for round in 0..60 {
        let uid = uids[round % uids.len()];
        store
            .update_flags(&alice, &inbox(), uid, &toggle(round / uids.len()))
            .await
            .unwrap();
    }
    let latest = store.latest_change(&alice).await.unwrap();
    assert_eq!(latest, 64, "one change a write");
    let counters = held(&store, &alice).await;
    assert!(counters.len() >= KEEP as usize, "{counters:?}");
    assert!(counters.len() <= most_held(KEEP), "{counters:?}");
    // A reader that saw only the arrivals fell out; one that is ten behind did not.
    assert_eq!(
        store.changes_after(&alice, 4, 100).await.unwrap(),
        ChangesAfter::Lost
    );
    let ChangesAfter::Read(recent) = store.changes_after(&alice, latest - 10, 100).await.unwrap()
    else {
        panic!("ten behind is within the window");
    };
    let read: Vec<u64> = recent.iter().map(|change| change.counter).collect();
    assert_eq!(read, ((latest - 9)..=latest).collect::<Vec<_>>());
    assert_eq!(
        store.changes_after(&alice, latest, 100).await.unwrap(),
        ChangesAfter::Read(Vec::new())
    );
}

async fn racing_writers_leave_a_bounded_log_without_holes(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let uids = appended(&store, &alice, 4).await;
    let writers = uids.into_iter().enumerate().map(|(n, uid)| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            for round in 0..20 {
                // A reader within the window always reads on without a hole.
                let before = store.latest_change(&alice).await.unwrap();
                store
                    .update_flags(&alice, &inbox(), uid, &toggle(round))
                    .await
                    .unwrap();
                if round % 5 == n % 5 {
                    appended(&store, &alice, 1).await;
                }
                let read = store.changes_after(&alice, before, 100).await.unwrap();
                assert!(
                    matches!(read, ChangesAfter::Read(ref c) if !c.is_empty()),
                    "{read:?}"
                );
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
    let counters = held(&store, &alice).await;
    assert!(counters.len() <= most_held(KEEP), "{counters:?}");
    assert!(store.latest_change(&alice).await.unwrap() > 80);
}

/// What a client toggling flags in a loop would leave: a hundred thousand changes, in writes
/// of five hundred as a STORE of a large folder makes them, and the log still holds no more
/// than its window. Embedded only: a hundred thousand transactions are too many for moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_changes_leave_the_log_its_window() {
    let keep = ChangeWindow::DEFAULT.keep();
    let test_store = embedded_store_with(ChangeWindow::DEFAULT);
    let (store, alice) = with_mailbox_account(test_store.store.clone()).await;
    let batch = pushmail_store::FLAG_CHANGES_PER_CALL;
    let mut uids = Vec::new();
    while uids.len() < batch {
        let messages: Vec<_> = (0..40)
            .map(|n| new_message(format!("Subject: {n}\r\n\r\nhi\r\n")))
            .collect();
        let stored = store.append_all(&alice, &inbox(), &messages, None).await;
        let Ok(Delivery::Stored { uid, .. }) = stored else {
            panic!("not stored: {stored:?}");
        };
        uids.extend(uid..uid + 40);
    }
    uids.truncate(batch);
    for round in 0..(100_000 / batch) {
        store
            .change_flags_of(&alice, &inbox(), &uids, &toggle(round), None)
            .await
            .unwrap();
    }
    assert!(store.latest_change(&alice).await.unwrap() >= 100_000);
    let counters = held(&store, &alice).await;
    assert!(counters.len() >= keep as usize);
    assert!(counters.len() <= most_held(keep), "{}", counters.len());
    assert_eq!(
        store.changes_after(&alice, 0, 100).await.unwrap(),
        ChangesAfter::Lost
    );
}

/// The window is the store's: the same writes on a store keeping the default window keep
/// every change of a short history.
#[tokio::test]
async fn a_short_history_is_kept_whole() {
    let test_store = pushmail_tests::test_store().await;
    let (store, alice) = with_mailbox_account(test_store.store.clone()).await;
    appended(&store, &alice, 30).await;
    assert_eq!(held(&store, &alice).await.len(), 30);
}
