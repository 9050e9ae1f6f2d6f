//! A COPY of many messages on both backends: stored in writes of up to forty (one flush of the
//! disk each, not one a message), whole and in UID order across those writes, each copy its
//! own `added` change, and nothing left in the target when one of the writes is refused.

use std::sync::Arc;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{MAX_MESSAGES_PER_APPEND, NewMessage};
use pushmail_core::types::Address;
use pushmail_store::{ChangeKind, Copied, Delivery, Store};
use pushmail_tests::fixtures::{new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    a_copy_of_a_hundred_messages_is_whole_and_in_order,
);

fn folder(name: &str) -> FolderName {
    FolderName::parse(name).unwrap()
}

/// `count` messages appended to the INBOX, forty a write, with a flag on every third.
async fn inbox_of(store: &Arc<dyn Store>, alice: &Address, count: usize) {
    let messages: Vec<NewMessage> = (0..count)
        .map(|n| NewMessage {
            flags: match n % 3 {
                0 => vec!["\\Flagged".to_owned()],
                _ => Vec::new(),
            },
            ..new_message(format!("Subject: {n}\r\n\r\n{}\r\n", "x".repeat(n)))
        })
        .collect();
    for chunk in messages.chunks(MAX_MESSAGES_PER_APPEND) {
        let stored = store.append_all(alice, &folder("INBOX"), chunk, None).await;
        assert!(matches!(stored, Ok(Delivery::Stored { .. })), "{stored:?}");
    }
}

async fn a_copy_of_a_hundred_messages_is_whole_and_in_order(
    (store, alice): (Arc<dyn Store>, Address),
) {
    inbox_of(&store, &alice, 100).await;
    store
        .create_folder(&alice, &folder("Archive"), chrono::Utc::now())
        .await
        .unwrap();
    let before = store.latest_change(&alice).await.unwrap();
    // Every other UID, backwards, with some that are not there.
    let asked: Vec<u32> = (1..=100).rev().step_by(2).chain([0, 500]).collect();
    let copied = store
        .copy(&alice, &folder("INBOX"), &asked, &folder("Archive"), None)
        .await
        .unwrap();
    let Copied::Copied { uids, .. } = copied else {
        panic!("{copied:?}");
    };
    let expected: Vec<(u32, u32)> = (2..=100).step_by(2).zip(1..).collect();
    assert_eq!(uids, expected);
    let archive = store
        .messages(&alice, &folder("Archive"), 0, 1_000)
        .await
        .unwrap();
    let inbox = store
        .messages(&alice, &folder("INBOX"), 0, 1_000)
        .await
        .unwrap();
    assert_eq!(archive.len(), 50);
    for (&(from, to), copy) in expected.iter().zip(&archive) {
        let original = &inbox[from as usize - 1];
        assert_eq!((original.uid, copy.uid), (from, to));
        assert_eq!(
            (&original.flags, original.size, original.internal_date),
            (&copy.flags, copy.size, copy.internal_date)
        );
    }
    let changes = store.changes_since(&alice, before, 1_000).await.unwrap();
    assert_eq!(changes.len(), 50);
    assert!(
        changes
            .iter()
            .zip(1..)
            .all(|(change, uid)| change.kind == ChangeKind::Added && change.uid == uid)
    );
    // A quota that does not hold them all: none of them copied.
    let usage = store.mailbox_usage(&alice).await.unwrap();
    let all: Vec<u32> = (1..=100).collect();
    let refused = store
        .copy(
            &alice,
            &folder("INBOX"),
            &all,
            &folder("Archive"),
            Some(usage + 4_000),
        )
        .await
        .unwrap();
    assert_eq!(refused, Copied::OverQuota);
    let left = store
        .messages(&alice, &folder("Archive"), 0, 1_000)
        .await
        .unwrap();
    assert_eq!(left.len(), 50);
}
