//! Two processes on one DynamoDB table. A delivery, a flag change, an EXPUNGE and a folder's
//! creation each read, then write in a transaction whose conditions say that what they read is
//! unchanged. Within one process the writes to an account take turns, so only another process
//! can come between the read and the transaction. Here one process's transaction is held at an
//! endpoint in front of the table (`HeldDynamo`) while the other process writes, then let go.
//! For the mail, the conditions overlap: the message's own item (its state, or for a delivery
//! that its UID is free), the folder's HIGHESTMODSEQ or next UID, the account's change counter
//! and the new change-log item each catch the race alone. Each test fails when all four are
//! dropped (tried by hand: the flag change then loses the other's flag, the EXPUNGE removes the
//! message that was undeleted, the delivery writes over the other's message); the folder test
//! fails without the UIDVALIDITY floor's condition alone.

use std::sync::Arc;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use pushmail_store::{Delivery, Store};
use pushmail_tests::HeldDynamo;
use pushmail_tests::fixtures::{inbox, mailbox_with, new_message};

/// Alice's mailbox on a fresh table, seen by two processes: `direct` to the table, `held`
/// through `endpoint`, which can hold its requests.
struct TwoProcesses {
    direct: Arc<dyn Store>,
    held: Arc<dyn Store>,
    endpoint: HeldDynamo,
    alice: Address,
    /// Of the messages in her INBOX.
    uids: Vec<u32>,
}

async fn two_processes(messages: usize) -> TwoProcesses {
    let test_store = pushmail_tests::dynamo_store().await;
    let alice = Address::parse("alice@races.example").unwrap();
    mailbox_with(test_store.store.as_ref(), &alice, messages, |n| {
        format!("Subject: message {n}\r\n\r\nhi\r\n")
    })
    .await;
    let uids = uids_of(&test_store.store, &alice).await;
    assert_eq!(uids.len(), messages);
    let endpoint = HeldDynamo::start().await;
    TwoProcesses {
        direct: test_store.store.clone(),
        held: Arc::new(endpoint.store(&test_store).await),
        endpoint,
        alice,
        uids,
    }
}

async fn uids_of(store: &Arc<dyn Store>, account: &Address) -> Vec<u32> {
    store
        .message_states(account, &inbox(), 0, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|state| state.uid)
        .collect()
}

fn add(flag: &str) -> FlagChange {
    FlagChange::Add(vec![flag.to_owned()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn a_flag_set_by_another_process_meanwhile_is_kept() {
    let TwoProcesses {
        direct,
        held,
        endpoint,
        alice,
        uids,
    } = two_processes(1).await;
    let uid = uids[0];
    let before = direct.folder(&alice, &inbox()).await.unwrap().unwrap();
    let mut write = endpoint.hold_next(&["TransactWriteItems"], "meta");
    let seen = tokio::spawn({
        let alice = alice.clone();
        async move {
            held.update_flags(&alice, &inbox(), uid, &add("\\Seen"))
                .await
        }
    });
    write.reached().await;
    let flagged = direct
        .update_flags(&alice, &inbox(), uid, &add("\\Flagged"))
        .await
        .unwrap();
    assert_eq!(flagged, Some(vec!["\\Flagged".to_owned()]));
    write.release();

    let mut seen = seen.await.unwrap().unwrap().expect("the message");
    seen.sort();
    assert_eq!(
        seen,
        ["\\Flagged", "\\Seen"],
        "what the held change answered"
    );
    let state = direct
        .message_states(&alice, &inbox(), 0, 10)
        .await
        .unwrap()
        .remove(0);
    let mut kept = state.flags.clone();
    kept.sort();
    assert_eq!(
        kept,
        ["\\Flagged", "\\Seen"],
        "one change lost the other's flag"
    );
    let after = direct.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(
        after.highest_modseq,
        before.highest_modseq + 2,
        "each change its own MODSEQ"
    );
    assert_eq!(state.modseq, after.highest_modseq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn a_message_undeleted_by_another_process_meanwhile_is_not_expunged() {
    let TwoProcesses {
        direct,
        held,
        endpoint,
        alice,
        uids,
    } = two_processes(2).await;
    for &uid in &uids {
        direct
            .update_flags(&alice, &inbox(), uid, &add("\\Deleted"))
            .await
            .unwrap();
    }
    let mut write = endpoint.hold_next(&["TransactWriteItems"], "meta");
    let expunge = tokio::spawn({
        let (alice, uids) = (alice.clone(), uids.clone());
        async move { held.expunge(&alice, &inbox(), &uids, true).await }
    });
    write.reached().await;
    let undeleted = direct
        .update_flags(
            &alice,
            &inbox(),
            uids[0],
            &FlagChange::Remove(vec!["\\Deleted".to_owned()]),
        )
        .await
        .unwrap();
    assert_eq!(undeleted, Some(Vec::new()));
    write.release();

    let expunged = expunge.await.unwrap().unwrap();
    assert_eq!(expunged, [uids[1]], "only the message still \\Deleted");
    assert_eq!(
        uids_of(&direct, &alice).await,
        [uids[0]],
        "the undeleted message was expunged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn mail_delivered_by_another_process_meanwhile_keeps_its_uid() {
    let TwoProcesses {
        direct,
        held,
        endpoint,
        alice,
        ..
    } = two_processes(0).await;
    let mut write = endpoint.hold_next(&["TransactWriteItems"], "meta");
    let first = tokio::spawn({
        let alice = alice.clone();
        async move {
            let message = new_message("Subject: held\r\n\r\nfirst read\r\n");
            held.deliver(&alice, &inbox(), &message, None).await
        }
    });
    write.reached().await;
    let meanwhile = new_message("Subject: meanwhile\r\n\r\nfirst stored\r\n");
    let stored = direct
        .deliver(&alice, &inbox(), &meanwhile, None)
        .await
        .unwrap();
    assert!(
        matches!(stored, Delivery::Stored { uid: 1, .. }),
        "{stored:?}"
    );
    write.release();

    let held_stored = first.await.unwrap().unwrap();
    assert!(
        matches!(held_stored, Delivery::Stored { uid: 2, .. }),
        "{held_stored:?}"
    );
    assert_eq!(uids_of(&direct, &alice).await, [1, 2], "one message lost");
    for (uid, words) in [(1, "first stored"), (2, "first read")] {
        let body = direct
            .message_body(&alice, &inbox(), uid)
            .await
            .unwrap()
            .expect("kept");
        assert!(String::from_utf8_lossy(&body).contains(words), "{uid}");
    }
}

/// Folders made at once by two processes get different UIDVALIDITYs: each creation raises the
/// address's UIDVALIDITY floor on the condition that the floor is still what it read. Had one
/// creation not waited for the other, both would take the same UIDVALIDITY (made in the same
/// second over the same floor), and a name could later get a UIDVALIDITY it had before (one
/// folder deleted, the other renamed to its name).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn folders_made_at_once_by_two_processes_get_different_uidvalidities() {
    let TwoProcesses {
        direct,
        held,
        endpoint,
        alice,
        ..
    } = two_processes(0).await;
    let mut write = endpoint.hold_next(&["TransactWriteItems"], "floor");
    let at = chrono::Utc::now();
    let (one, two) = (
        FolderName::parse("One").unwrap(),
        FolderName::parse("Two").unwrap(),
    );
    let first = tokio::spawn({
        let (alice, one) = (alice.clone(), one.clone());
        async move { held.create_folder(&alice, &one, at).await }
    });
    write.reached().await;
    direct.create_folder(&alice, &two, at).await.unwrap();
    write.release();
    first.await.unwrap().unwrap();

    let folders = direct.folders(&alice).await.unwrap();
    let validity = |name: &FolderName| {
        folders
            .iter()
            .find(|folder| &folder.name == name)
            .map(|folder| folder.uid_validity)
            .expect("made")
    };
    assert_ne!(validity(&one), validity(&two), "{folders:?}");
    let mut all: Vec<u32> = folders.iter().map(|folder| folder.uid_validity).collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        folders.len(),
        "one UIDVALIDITY each: {folders:?}"
    );
}
