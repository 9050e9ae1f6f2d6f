//! Deleting a large mailbox while others write, and an address re-created while its last
//! owner's mailbox is being purged, or while mail meant for the last owner is being stored.
//!
//! On the embedded store the purge removed every row of the mailbox in the delete's one write
//! transaction: ten thousand messages (thirty thousand rows and more) held the writer, and so
//! every other session's APPEND, STORE and delivery, until it committed. It now goes a bounded
//! step a transaction, other writes running between steps. On both backends an address created
//! anew while the purge runs gets an empty mailbox, and what its new owner then stores is never
//! removed by the purge still running for the last one.

use std::sync::Arc;

use chrono::Utc;
use pushmail_core::types::Address;
use pushmail_store::{AccountDelete, AccountStore, Delivery, Store};
use pushmail_tests::HeldDynamo;
use pushmail_tests::fixtures::{account, inbox, mailbox_account, mailbox_with, new_message};

async fn mailbox_of(store: &Arc<dyn Store>, address: &str, messages: usize) -> Address {
    let address = Address::parse(address).unwrap();
    mailbox_with(store.as_ref(), &address, messages, |n| {
        format!("Subject: old {n}\r\n\r\nthe last owner's\r\n")
    })
    .await;
    address
}

async fn inbox_count(store: &Arc<dyn Store>, address: &Address) -> usize {
    store
        .message_states(address, &inbox(), 0, 1_000_000)
        .await
        .unwrap()
        .len()
}

/// The address's new owner makes its folders and stores one message of its own.
async fn new_owner_stores_its_mail(store: &Arc<dyn Store>, owner: &Address) {
    store
        .create_default_folders(owner, Utc::now())
        .await
        .unwrap();
    let mine = new_message("Subject: the new owner's\r\n\r\nmine\r\n");
    let stored = store
        .append_all(owner, &inbox(), &[mine], None)
        .await
        .unwrap();
    assert!(matches!(stored, Delivery::Stored { .. }), "{stored:?}");
}

/// The new owner's mailbox holds its INBOX with exactly its one message, whole.
async fn assert_only_the_new_owners_mail(store: &Arc<dyn Store>, owner: &Address, case: &str) {
    let folders = store.folders(owner).await.unwrap();
    assert!(
        folders.iter().any(|folder| folder.name == inbox()),
        "{case}: the new owner's INBOX is gone"
    );
    let states = store
        .message_states(owner, &inbox(), 0, 1_000_000)
        .await
        .unwrap();
    assert_eq!(states.len(), 1, "{case}: {} messages", states.len());
    let body = store
        .message_body(owner, &inbox(), states[0].uid)
        .await
        .unwrap()
        .expect("the new owner's message is kept whole");
    assert!(
        String::from_utf8_lossy(&body).contains("the new owner's"),
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_mailbox_is_purged_in_steps_with_other_writes_between_them() {
    const MESSAGES: usize = 10_000;
    let test_store = pushmail_tests::embedded_store();
    let store: Arc<dyn Store> = test_store.store.clone();
    let big = mailbox_of(&store, "big@steps.example", MESSAGES).await;
    let other = mailbox_of(&store, "other@steps.example", 0).await;
    assert_eq!(inbox_count(&store, &big).await, MESSAGES);

    let deleting = tokio::spawn({
        let (store, big) = (store.clone(), big.clone());
        async move { store.delete_account(&big).await.unwrap() }
    });
    // Each APPEND is a write of its own: it runs between the purge's steps, or (before) after
    // the one transaction that removed everything at once.
    let (mut appended, mut seen_partly_purged) = (0, false);
    while !deleting.is_finished() {
        let message = new_message(format!("Subject: meanwhile {appended}\r\n\r\nhi\r\n"));
        let stored = store
            .append_all(&other, &inbox(), &[message], None)
            .await
            .unwrap();
        assert!(matches!(stored, Delivery::Stored { .. }), "{stored:?}");
        appended += 1;
        let left = inbox_count(&store, &big).await;
        seen_partly_purged |= 0 < left && left < MESSAGES;
    }
    assert!(matches!(
        deleting.await.unwrap(),
        AccountDelete::Deleted { .. }
    ));
    assert!(
        seen_partly_purged,
        "no write ran while the purge was under way ({appended} APPENDs)"
    );
    assert_eq!(inbox_count(&store, &big).await, 0);
    assert_eq!(inbox_count(&store, &other).await, appended);

    // The address made anew starts empty and can be used at once.
    let again = mailbox_of(&store, "big@steps.example", 1).await;
    assert_eq!(inbox_count(&store, &again).await, 1);
}

/// Deletes the address while it is created anew and its new owner stores a message, many times
/// over: whoever wins, the new owner's mailbox holds exactly its own message in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_address_created_anew_during_its_purge_keeps_its_new_owners_mail_alone() {
    let test_store = pushmail_tests::test_store().await;
    let store: Arc<dyn Store> = test_store.store.clone();
    let (rounds, messages) = match test_store.table {
        Some(_) => (3, 120),
        None => (10, 2_500),
    };
    for round in 0..rounds {
        let address = format!("round{round}@recreated.example");
        let old = mailbox_of(&store, &address, messages).await;
        let deleting = tokio::spawn({
            let (store, old) = (store.clone(), old.clone());
            async move { store.delete_account(&old).await.unwrap() }
        });
        // Created as soon as the delete has removed the account, while its purge runs.
        let owner = account(&address);
        while !store.create_account(&owner).await.unwrap() {
            tokio::task::yield_now().await;
        }
        new_owner_stores_its_mail(&store, &owner.address).await;
        assert!(matches!(
            deleting.await.unwrap(),
            AccountDelete::Deleted { .. }
        ));
        assert_only_the_new_owners_mail(&store, &owner.address, &format!("round {round}")).await;
    }
}

/// On DynamoDB a purge reads a page of the last owner's keys, then deletes them in transactions
/// that check the address still has no account: a new owner's items can have the same keys
/// (`FOLDER#INBOX`, a message's UID, the mailbox state). Here the address is created anew, and
/// its new owner stores a message, while the purge's first transaction is held at an endpoint in
/// front of the table, after the purge read its page; then the transaction is let go. Without
/// the check it would delete the new owner's folders and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn an_address_created_anew_between_a_purges_read_and_its_delete_keeps_its_new_owners_mail() {
    let test_store = pushmail_tests::dynamo_store().await;
    let store: Arc<dyn Store> = test_store.store.clone();
    let address = "held@recreated.example";
    let old = mailbox_of(&store, address, 5).await;
    let endpoint = HeldDynamo::start().await;
    let purging = endpoint.store(&test_store).await;
    let mut delete = endpoint.hold_next(&["TransactWriteItems"], "ConditionCheck");
    let deleting = tokio::spawn(async move { purging.delete_account(&old).await });
    delete.reached().await;

    let owner = account(address);
    assert!(store.create_account(&owner).await.unwrap());
    new_owner_stores_its_mail(&store, &owner.address).await;
    delete.release();
    assert!(matches!(
        deleting.await.unwrap().unwrap(),
        AccountDelete::Deleted { .. }
    ));
    assert_only_the_new_owners_mail(&store, &owner.address, "held").await;
}

/// On DynamoDB a delivery reads the account, then stores the message in a transaction that
/// checks the account is still the one it read (by its creation time). Here the address is
/// deleted and created anew, a new person, while that transaction is held. The last owner's
/// INBOX was empty, so nothing else in the transaction (the folder's next UID, the mailbox
/// state) tells the two owners apart. Let go, the mail meant for the last owner must not reach
/// the new one's INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn mail_held_while_its_address_is_created_anew_never_reaches_the_new_owner() {
    let test_store = pushmail_tests::dynamo_store().await;
    let store: Arc<dyn Store> = test_store.store.clone();
    let address = Address::parse("held-mail@recreated.example").unwrap();
    mailbox_account(store.as_ref(), &address).await;
    let last = store.account(&address).await.unwrap().unwrap();
    let endpoint = HeldDynamo::start().await;
    let delivering: Arc<dyn Store> = Arc::new(endpoint.store(&test_store).await);
    let mut write = endpoint.hold_next(&["TransactWriteItems"], "created_at");
    let mut meant = new_message("Subject: for the last owner\r\n\r\ntheirs\r\n");
    meant.owner_known_at = Some(last.created_at);
    let delivery = tokio::spawn({
        let address = address.clone();
        async move { delivering.deliver(&address, &inbox(), &meant, None).await }
    });
    write.reached().await;

    assert!(matches!(
        store.delete_account(&address).await.unwrap(),
        AccountDelete::Deleted { .. }
    ));
    // A later creation time: another person.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    mailbox_account(store.as_ref(), &address).await;
    write.release();
    assert_eq!(delivery.await.unwrap().unwrap(), Delivery::NoSuchAccount);
    let states = store
        .message_states(&address, &inbox(), 0, 100)
        .await
        .unwrap();
    assert!(
        states.is_empty(),
        "the last owner's mail reached the new one: {states:?}"
    );
}
