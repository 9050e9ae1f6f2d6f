//! IMAP's `\Recent` claimed with an APPEND into the appender's selected folder, on both
//! backends: the appender always gets its own messages, with whatever came before them that no
//! session claimed, and no message goes to two sessions, however the writes race.

use std::sync::Arc;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::types::Address;
use pushmail_store::{Delivery, Store};
use pushmail_tests::fixtures::{inbox, new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    racing_appenders_each_claim_their_own_messages_and_no_message_twice,
    an_append_that_stores_nothing_claims_nothing,
);

fn message(subject: &str) -> NewMessage {
    let raw = format!("From: bob@example.org\r\nSubject: {subject}\r\n\r\nHello\r\n");
    new_message(raw)
}

async fn racing_appenders_each_claim_their_own_messages_and_no_message_twice(
    (store, alice): (Arc<dyn Store>, Address),
) {
    // Delivered, and told to no session yet: the first appender's claim takes them too.
    for n in 0..3 {
        store
            .deliver(&alice, &inbox(), &message(&format!("d{n}")), None)
            .await
            .unwrap();
    }
    let appenders = (0..8).map(|n| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let messages = [message(&format!("a{n}")), message(&format!("b{n}"))];
            let (delivery, claimed) = store
                .append_all_claiming_recent(&alice, &inbox(), &messages, None)
                .await
                .unwrap();
            let Delivery::Stored { uid, .. } = delivery else {
                panic!("not stored: {delivery:?}");
            };
            ((uid, uid + 1), claimed)
        })
    });
    let mut taken: Vec<u32> = Vec::new();
    for appender in appenders {
        let ((first, last), claimed) = appender.await.unwrap();
        assert!(
            claimed.contains(&first) && claimed.contains(&last),
            "{first}..={last} not in {claimed:?}"
        );
        taken.extend(claimed);
    }
    taken.sort_unstable();
    assert_eq!(taken, (1..=19).collect::<Vec<_>>(), "each UID exactly once");
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.recent_up_to, 19);
    assert!(
        store
            .claim_recent(&alice, &inbox(), 19)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_append_that_stores_nothing_claims_nothing((store, alice): (Arc<dyn Store>, Address)) {
    store
        .deliver(&alice, &inbox(), &message("unclaimed"), None)
        .await
        .unwrap();
    let over_quota = store
        .append_all_claiming_recent(&alice, &inbox(), &[message("big")], Some(10))
        .await
        .unwrap();
    assert_eq!(over_quota.0, Delivery::OverQuota);
    assert!(over_quota.1.is_empty(), "{:?}", over_quota.1);
    let nowhere = FolderName::parse("Nowhere").unwrap();
    let (delivery, claimed) = store
        .append_all_claiming_recent(&alice, &nowhere, &[message("lost")], None)
        .await
        .unwrap();
    assert_eq!(delivery, Delivery::NoSuchFolder);
    assert!(claimed.is_empty());
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(
        folder.recent_up_to, 0,
        "the delivered message is still unclaimed"
    );
}
