//! The change log as IMAP sessions read it after every command, on both backends: a change is
//! there for any reader as soon as the write that made it is answered, however writes (mail
//! stored and made durable, flag changes answered at their commit, expunges) and reads race.
//! The embedded store answers a read after its last committed change without reading the log:
//! this is what that must never hide.

use std::sync::Arc;

use pushmail_core::mailbox::FlagChange;
use pushmail_core::types::Address;
use pushmail_store::{ChangeKind, Delivery, Store};
use pushmail_tests::fixtures::{inbox, new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    every_change_is_read_as_soon_as_its_write_is_answered,
);

/// Whether the log after `after` holds a change of `kind` to `uid`.
async fn logged(
    store: &Arc<dyn Store>,
    alice: &Address,
    after: u64,
    uid: u32,
    kind: ChangeKind,
) -> bool {
    let changes = store.changes_since(alice, after, 10_000).await.unwrap();
    changes
        .iter()
        .any(|change| change.uid == uid && change.kind == kind)
}

async fn every_change_is_read_as_soon_as_its_write_is_answered(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let writers = (0..6).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            for m in 0..15 {
                // What a session had read up to, then a read of nothing new (as after a FETCH).
                let before = store.latest_change(&alice).await.unwrap();
                store.changes_since(&alice, before, 10_000).await.unwrap();
                let raw = format!("From: bob@example.org\r\nSubject: {n}/{m}\r\n\r\nhi\r\n");
                let message = new_message(raw);
                let Delivery::Stored { uid, .. } = store
                    .append(&alice, &inbox(), &message, None)
                    .await
                    .unwrap()
                else {
                    panic!("not stored");
                };
                assert!(
                    logged(&store, &alice, before, uid, ChangeKind::Added).await,
                    "{uid} added"
                );
                let before = store.latest_change(&alice).await.unwrap();
                store.changes_since(&alice, before, 10_000).await.unwrap();
                let deleted = FlagChange::Add(vec!["\\Deleted".into()]);
                store
                    .update_flags(&alice, &inbox(), uid, &deleted)
                    .await
                    .unwrap();
                assert!(
                    logged(&store, &alice, before, uid, ChangeKind::Flags).await,
                    "{uid} flagged"
                );
                let before = store.latest_change(&alice).await.unwrap();
                store.changes_since(&alice, before, 10_000).await.unwrap();
                store.expunge(&alice, &inbox(), &[uid], true).await.unwrap();
                assert!(
                    logged(&store, &alice, before, uid, ChangeKind::Expunged).await,
                    "{uid} expunged"
                );
            }
        })
    });
    for writer in writers {
        writer.await.unwrap();
    }
}
