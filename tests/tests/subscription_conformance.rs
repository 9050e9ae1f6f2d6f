//! Subscriptions outlive their folders (RFC 3501 §6.3.6: DELETE does not unsubscribe), on both
//! backends: a deleted subscribed folder's name stays subscribed until UNSUBSCRIBE, an
//! unsubscribed one's does not, a folder created again under the name takes it back, and what
//! is kept is bounded and goes with the account.

use std::sync::Arc;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::MAX_KEPT_SUBSCRIPTIONS;
use pushmail_core::types::{Address, now};
use pushmail_store::{FolderChange, Store};
use pushmail_tests::fixtures::with_mailbox_account;

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    a_deleted_folder_keeps_its_subscription_until_unsubscribed,
    kept_subscriptions_are_bounded_and_go_with_the_account,
);

fn folder(name: &str) -> FolderName {
    FolderName::parse(name).unwrap()
}

async fn kept(store: &Arc<dyn Store>, alice: &Address) -> Vec<String> {
    let mut names: Vec<String> = store
        .subscriptions_without_folder(alice)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    names.sort();
    names
}

async fn a_deleted_folder_keeps_its_subscription_until_unsubscribed(
    (store, alice): (Arc<dyn Store>, Address),
) {
    for name in ["Lists", "Lists/rust", "Old"] {
        store
            .create_folder(&alice, &folder(name), now())
            .await
            .unwrap();
    }
    store
        .set_subscribed(&alice, &folder("Old"), false)
        .await
        .unwrap();
    for name in ["Lists/rust", "Old"] {
        let removed = store
            .remove_empty_folder(&alice, &folder(name))
            .await
            .unwrap();
        assert_eq!(removed, FolderChange::Done);
    }
    // Subscribed when deleted: kept; not subscribed: not.
    assert_eq!(kept(&store, &alice).await, ["Lists/rust"]);
    // Created again: the folder is subscribed, and no longer listed as kept.
    store
        .create_folder(&alice, &folder("Lists/rust"), now())
        .await
        .unwrap();
    assert!(kept(&store, &alice).await.is_empty());
    let again = store
        .folder(&alice, &folder("Lists/rust"))
        .await
        .unwrap()
        .unwrap();
    assert!(again.subscribed);
    // Deleted unsubscribed this time: what was kept before goes too.
    store
        .set_subscribed(&alice, &folder("Lists/rust"), false)
        .await
        .unwrap();
    store
        .remove_empty_folder(&alice, &folder("Lists/rust"))
        .await
        .unwrap();
    assert!(kept(&store, &alice).await.is_empty());
    // UNSUBSCRIBE of a kept name lets it go; of a name never kept, nothing.
    store
        .remove_empty_folder(&alice, &folder("Lists"))
        .await
        .unwrap();
    assert_eq!(kept(&store, &alice).await, ["Lists"]);
    assert!(
        !store
            .set_subscribed(&alice, &folder("Lists"), true)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_subscribed(&alice, &folder("Lists"), false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_subscribed(&alice, &folder("Lists"), false)
            .await
            .unwrap()
    );
    assert!(kept(&store, &alice).await.is_empty());
}

async fn kept_subscriptions_are_bounded_and_go_with_the_account(
    (store, alice): (Arc<dyn Store>, Address),
) {
    // Racing deletes of subscribed folders: each keeps its name, none is lost.
    let names: Vec<String> = (0..20).map(|n| format!("f{n:02}")).collect();
    for name in &names {
        store
            .create_folder(&alice, &folder(name), now())
            .await
            .unwrap();
    }
    let mut racing = tokio::task::JoinSet::new();
    for name in names.clone() {
        let (store, alice) = (store.clone(), alice.clone());
        racing.spawn(async move {
            store
                .remove_empty_folder(&alice, &folder(&name))
                .await
                .unwrap()
        });
    }
    assert!(
        racing
            .join_all()
            .await
            .iter()
            .all(|r| *r == FolderChange::Done)
    );
    assert_eq!(kept(&store, &alice).await, names);
    // The bound: past it, a deleted folder's subscription goes with it.
    for n in names.len()..MAX_KEPT_SUBSCRIPTIONS + 3 {
        let name = folder(&format!("g{n:04}"));
        store.create_folder(&alice, &name, now()).await.unwrap();
        store.remove_empty_folder(&alice, &name).await.unwrap();
    }
    assert_eq!(kept(&store, &alice).await.len(), MAX_KEPT_SUBSCRIPTIONS);
    // A new owner of the address inherits none of them.
    store.delete_account(&alice).await.unwrap();
    pushmail_tests::fixtures::mailbox_account(store.as_ref(), &alice).await;
    assert!(kept(&store, &alice).await.is_empty());
}
