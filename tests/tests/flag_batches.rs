//! Flags changed for several messages in one call (`change_flags_of`, what STORE uses), and a
//! folder read without envelopes (`message_states`, and without flags too), on both backends: DynamoDB with bodies in
//! S3 (moto in the test command) and the embedded redb store.

use std::sync::Arc;

use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use pushmail_store::{ChangeKind, Delivery, EmbeddedStore, FlagUpdate, MailboxStore, Store};
use pushmail_tests::fixtures::{inbox, new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    a_batch_tells_each_message_its_outcome_in_order,
    racing_batches_lose_no_flag,
    states_are_the_messages_without_their_envelopes,
);

/// Delivers `count` messages; their UIDs, and the folder's HIGHESTMODSEQ after.
async fn deliver(store: &Arc<dyn Store>, alice: &Address, count: usize) -> (Vec<u32>, u64) {
    let mut uids = Vec::new();
    let mut highest = 0;
    for n in 0..count {
        let raw = format!("From: Bob <bob@example.org>\r\nSubject: message {n}\r\n\r\nbody\r\n");
        let message = new_message(raw);
        let Delivery::Stored { uid, modseq, .. } = store
            .deliver(alice, &inbox(), &message, None)
            .await
            .unwrap()
        else {
            panic!("not stored");
        };
        uids.push(uid);
        highest = modseq;
    }
    (uids, highest)
}

async fn a_batch_tells_each_message_its_outcome_in_order(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let (uids, highest) = deliver(&store, &alice, 3).await;
    let (first, second, third) = (uids[0], uids[1], uids[2]);
    let before = store.latest_change(&alice).await.unwrap();
    // The second already carries the flag; a UID that is not there; the third twice.
    let seen = FlagChange::Add(vec!["\\Seen".into()]);
    store
        .update_flags(&alice, &inbox(), second, &seen)
        .await
        .unwrap();
    let highest = highest + 1;
    let updates = store
        .change_flags_of(
            &alice,
            &inbox(),
            &[first, second, 999, third, third],
            &seen,
            None,
        )
        .await
        .unwrap();
    let applied = |flags: &[&str], modseq: u64| FlagUpdate::Applied {
        flags: flags.iter().map(|f| f.to_string()).collect(),
        modseq,
    };
    assert_eq!(
        updates,
        vec![
            applied(&["\\Seen"], highest + 1),
            applied(&["\\Seen"], highest),
            FlagUpdate::NoSuchMessage,
            applied(&["\\Seen"], highest + 2),
            applied(&["\\Seen"], highest + 2),
        ]
    );
    // One change logged per message changed, and the folder's HIGHESTMODSEQ is the last.
    let changes = store.changes_since(&alice, before + 1, 100).await.unwrap();
    assert_eq!(
        changes.iter().map(|c| (c.uid, c.kind)).collect::<Vec<_>>(),
        vec![(first, ChangeKind::Flags), (third, ChangeKind::Flags)]
    );
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.highest_modseq, highest + 2);
    // UNCHANGEDSINCE is checked message by message: only those not changed after it change.
    let flagged = FlagChange::Add(vec!["\\Flagged".into()]);
    let updates = store
        .change_flags_of(&alice, &inbox(), &uids, &flagged, Some(highest))
        .await
        .unwrap();
    assert_eq!(
        updates,
        vec![
            FlagUpdate::Modified,
            applied(&["\\Seen", "\\Flagged"], highest + 3),
            FlagUpdate::Modified,
        ]
    );
    // An empty batch changes nothing.
    assert!(
        store
            .change_flags_of(&alice, &inbox(), &[], &flagged, None)
            .await
            .unwrap()
            .is_empty()
    );
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.highest_modseq, highest + 3);
}

async fn racing_batches_lose_no_flag((store, alice): (Arc<dyn Store>, Address)) {
    let (uids, highest) = deliver(&store, &alice, 5).await;
    // Ten batches over the same five messages at once, each adding its own keyword.
    let batches = futures::future::join_all((0..10).map(|i| {
        let (store, alice, uids) = (store.clone(), alice.clone(), uids.clone());
        async move {
            let change = FlagChange::Add(vec![format!("$Label{i}")]);
            store
                .change_flags_of(&alice, &inbox(), &uids, &change, None)
                .await
                .unwrap()
        }
    }))
    .await;
    let mut modseqs: Vec<u64> = batches
        .iter()
        .flatten()
        .map(|update| match update {
            FlagUpdate::Applied { modseq, .. } => *modseq,
            other => panic!("{other:?}"),
        })
        .collect();
    modseqs.sort_unstable();
    modseqs.dedup();
    // Fifty changes, each its own MODSEQ, none lost.
    assert_eq!(modseqs, (highest + 1..=highest + 50).collect::<Vec<_>>());
    for meta in store.messages(&alice, &inbox(), 0, 10).await.unwrap() {
        assert_eq!(meta.flags.len(), 10, "{:?}", meta.flags);
    }
}

async fn states_are_the_messages_without_their_envelopes(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let (uids, _) = deliver(&store, &alice, 4).await;
    store
        .update_flags(
            &alice,
            &inbox(),
            uids[1],
            &FlagChange::Add(vec!["\\Deleted".into()]),
        )
        .await
        .unwrap();
    let metas = store.messages(&alice, &inbox(), uids[0], 10).await.unwrap();
    let states = store
        .message_states(&alice, &inbox(), uids[0], 10)
        .await
        .unwrap();
    assert_eq!(states.len(), 3);
    assert_eq!(
        states,
        metas
            .into_iter()
            .map(|m| m.into_state())
            .collect::<Vec<_>>()
    );
    let limited = store.message_states(&alice, &inbox(), 0, 2).await.unwrap();
    assert_eq!(
        limited.iter().map(|s| s.uid).collect::<Vec<_>>(),
        vec![uids[0], uids[1]]
    );
    // Read for a FETCH without FLAGS: the same states, whether or not the flags come along.
    let unflagged = store
        .message_states_without_flags(&alice, &inbox(), uids[0], 10)
        .await
        .unwrap();
    assert_eq!(unflagged.len(), states.len());
    for (unflagged, state) in unflagged.iter().zip(&states) {
        assert!(unflagged.flags.is_empty() || unflagged.flags == state.flags);
        let (mut a, mut b) = (unflagged.clone(), state.clone());
        (a.flags, b.flags) = (Vec::new(), Vec::new());
        assert_eq!(a, b);
    }
}

/// Flag changes, `\Recent` claims and expunges are answered at their commit, before the durable
/// commit that ends the embedded store's writer pass, which follows at once: a process that
/// dies moments later, without closing the store, still left them on disk.
#[tokio::test]
async fn writes_answered_at_their_commit_survive_the_process_ending_moments_later() {
    const CHILD: &str = "PUSHMAIL_TEST_WRITE_THEN_ABORT";
    if let Some(path) = std::env::var_os(CHILD) {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(path.as_ref()).unwrap());
        let (store, alice) = with_mailbox_account(store).await;
        let (uids, _) = deliver(&store, &alice, 3).await;
        let deleted = FlagChange::Add(vec!["\\Deleted".into()]);
        store
            .change_flags_of(&alice, &inbox(), &uids[..2], &deleted, None)
            .await
            .unwrap();
        store.claim_recent(&alice, &inbox(), uids[2]).await.unwrap();
        let expunged = store.expunge(&alice, &inbox(), &uids[..1], true).await;
        assert_eq!(expunged.unwrap(), vec![uids[0]]);
        let flagged = FlagChange::Add(vec!["\\Flagged".into()]);
        store
            .change_flags_of(&alice, &inbox(), &uids[1..], &flagged, None)
            .await
            .unwrap();
        // Moments: the writer's pass ends with its durable commit right after these answers.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // Gone without closing the store (no destructor runs), and without a core file.
        std::process::exit(3);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushmail.redb");
    let test = "writes_answered_at_their_commit_survive_the_process_ending_moments_later";
    let died = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1"])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(died.code(), Some(3), "the child ends itself");
    let reopened = EmbeddedStore::open(&path).unwrap();
    let alice = Address::parse("alice@example.com").unwrap();
    let kept = reopened.messages(&alice, &inbox(), 0, 10).await.unwrap();
    let flags: Vec<(u32, Vec<String>)> = kept.into_iter().map(|m| (m.uid, m.flags)).collect();
    assert_eq!(
        flags,
        vec![
            (2, vec!["\\Deleted".into(), "\\Flagged".into()]),
            (3, vec!["\\Flagged".into()]),
        ]
    );
    let folder = reopened.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert!(!folder.is_unclaimed_recent(3), "{folder:?}");
}
