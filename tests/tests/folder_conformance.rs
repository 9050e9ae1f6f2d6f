//! What IMAP changes in a mailbox, on both backends: EXPUNGE, COPY, folders created, deleted,
//! renamed and subscribed.

use std::sync::Arc;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, NewMessage};
use pushmail_core::types::{Address, now};
use pushmail_store::{ChangeKind, Copied, Delivery, FlagUpdate, FolderChange, MessagePages, Store};
use pushmail_tests::fixtures::{new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    expunge_removes_only_deleted_messages_and_logs_each,
    an_expunge_racing_an_undelete_removes_only_what_is_still_deleted,
    a_copy_keeps_flags_and_dates_under_new_uids_all_or_none,
    deleting_a_folder_removes_its_messages_and_their_usage,
    renaming_moves_messages_and_subfolders_and_inbox_stays,
    folders_are_subscribed_until_unsubscribed,
    of_racing_conditional_stores_one_applies_and_the_others_see_modified,
    a_folder_larger_than_a_page_is_read_and_deleted_to_its_end,
    a_name_that_comes_back_never_gets_a_uid_validity_it_had,
);

fn folder(name: &str) -> FolderName {
    FolderName::parse(name).unwrap()
}

fn message(subject: &str, flags: &[&str]) -> NewMessage {
    NewMessage {
        flags: flags.iter().map(|f| f.to_string()).collect(),
        ..new_message(format!(
            "From: bob@example.org\r\nSubject: {subject}\r\n\r\nHello\r\n"
        ))
    }
}

async fn append(store: &Arc<dyn Store>, alice: &Address, to: &str, m: &NewMessage) -> u32 {
    match store.append(alice, &folder(to), m, None).await.unwrap() {
        Delivery::Stored { uid, noticed, .. } => {
            assert!(!noticed, "APPEND never announces");
            uid
        }
        other => panic!("{other:?}"),
    }
}

async fn uids(store: &Arc<dyn Store>, alice: &Address, name: &str) -> Vec<u32> {
    store.all_uids(alice, &folder(name)).await.unwrap()
}

async fn expunge_removes_only_deleted_messages_and_logs_each(
    (store, alice): (Arc<dyn Store>, Address),
) {
    assert_eq!(
        store.latest_change(&alice).await.unwrap(),
        0,
        "no change yet"
    );
    for i in 0..5 {
        let flags: &[&str] = if i % 2 == 0 { &["\\Deleted"] } else { &[] };
        append(&store, &alice, "INBOX", &message(&format!("m{i}"), flags)).await;
    }
    let before = store.changes_since(&alice, 0, 100).await.unwrap().len() as u64;
    let usage = store.mailbox_usage(&alice).await.unwrap();
    let removed = store
        .expunge(&alice, &folder("INBOX"), &[1, 2, 3, 4, 5, 99], true)
        .await
        .unwrap();
    assert_eq!(removed, [1, 3, 5]);
    assert_eq!(uids(&store, &alice, "INBOX").await, [2, 4]);
    assert_eq!(
        store
            .message_body(&alice, &folder("INBOX"), 1)
            .await
            .unwrap(),
        None
    );
    let changes = store.changes_since(&alice, before, 100).await.unwrap();
    assert_eq!(
        changes.iter().map(|c| (c.uid, c.kind)).collect::<Vec<_>>(),
        [1, 3, 5].map(|uid| (uid, ChangeKind::Expunged))
    );
    // The counter a session reads at SELECT is the newest change's number.
    assert_eq!(
        store.latest_change(&alice).await.unwrap(),
        changes.last().unwrap().counter
    );
    let inbox = store
        .folder(&alice, &folder("INBOX"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (inbox.messages, inbox.uid_next),
        (2, 6),
        "UIDs are not reused"
    );
    let left: u64 = store
        .messages(&alice, &folder("INBOX"), 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.size)
        .sum();
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), left);
    assert!(left < usage);
    // Again: nothing left to remove, nothing logged.
    let again = store
        .expunge(&alice, &folder("INBOX"), &[1, 2, 3], true)
        .await;
    assert_eq!(again.unwrap(), Vec::<u32>::new());
    let unknown = store.expunge(&alice, &folder("Nope"), &[1], false).await;
    assert_eq!(unknown.unwrap(), Vec::<u32>::new());
}

async fn an_expunge_racing_an_undelete_removes_only_what_is_still_deleted(
    (store, alice): (Arc<dyn Store>, Address),
) {
    for round in 0..6 {
        let uid = append(&store, &alice, "INBOX", &message("r", &["\\Deleted"])).await;
        let undelete = {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                let change = FlagChange::Remove(vec!["\\Deleted".into()]);
                store
                    .update_flags(&alice, &folder("INBOX"), uid, &change)
                    .await
                    .unwrap()
            })
        };
        let expunge = {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                store
                    .expunge(&alice, &folder("INBOX"), &[uid], true)
                    .await
                    .unwrap()
            })
        };
        let (undeleted, removed) = (undelete.await.unwrap(), expunge.await.unwrap());
        let present = uids(&store, &alice, "INBOX").await.contains(&uid);
        match (undeleted, removed.as_slice()) {
            // The undelete came first: the message stays.
            (Some(flags), []) => assert!(present && flags.is_empty(), "round {round}"),
            // The expunge came first: the undelete found nothing.
            (None, [gone]) => assert!(!present && *gone == uid, "round {round}"),
            other => panic!("round {round}: both won: {other:?}"),
        }
    }
}

async fn a_copy_keeps_flags_and_dates_under_new_uids_all_or_none(
    (store, alice): (Arc<dyn Store>, Address),
) {
    store
        .create_folder(&alice, &folder("Archive"), now())
        .await
        .unwrap();
    append(&store, &alice, "Archive", &message("already there", &[])).await;
    let a = append(&store, &alice, "INBOX", &message("a", &["\\Seen"])).await;
    let b = append(&store, &alice, "INBOX", &message("b", &["\\Flagged"])).await;
    let copied = store
        .copy(
            &alice,
            &folder("INBOX"),
            &[b, a, 77],
            &folder("Archive"),
            None,
        )
        .await
        .unwrap();
    let archive = store
        .folder(&alice, &folder("Archive"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        copied,
        Copied::Copied {
            uid_validity: archive.uid_validity,
            uids: vec![(a, 2), (b, 3)]
        }
    );
    let source = store
        .messages(&alice, &folder("INBOX"), 0, 10)
        .await
        .unwrap();
    let copies = store
        .messages(&alice, &folder("Archive"), 1, 10)
        .await
        .unwrap();
    for (original, copy) in source.iter().zip(&copies) {
        assert_eq!(original.flags, copy.flags);
        assert_eq!(original.internal_date, copy.internal_date);
        assert_eq!(original.envelope, copy.envelope);
        let body = |f: &str, uid| {
            let store = store.clone();
            let alice = alice.clone();
            let f = folder(f);
            async move { store.message_body(&alice, &f, uid).await.unwrap() }
        };
        assert_eq!(
            body("INBOX", original.uid).await,
            body("Archive", copy.uid).await
        );
    }
    // Over quota: none of them copied.
    let usage = store.mailbox_usage(&alice).await.unwrap();
    let refused = store
        .copy(
            &alice,
            &folder("INBOX"),
            &[a, b],
            &folder("Archive"),
            Some(usage + 10),
        )
        .await
        .unwrap();
    assert_eq!(refused, Copied::OverQuota);
    assert_eq!(uids(&store, &alice, "Archive").await, [1, 2, 3]);
    let nowhere = store
        .copy(&alice, &folder("INBOX"), &[a], &folder("Nope"), None)
        .await
        .unwrap();
    assert_eq!(nowhere, Copied::NoSuchFolder);
}

async fn deleting_a_folder_removes_its_messages_and_their_usage(
    (store, alice): (Arc<dyn Store>, Address),
) {
    store
        .create_folder(&alice, &folder("Old"), now())
        .await
        .unwrap();
    for i in 0..3 {
        append(&store, &alice, "Old", &message(&format!("o{i}"), &[])).await;
    }
    let kept = append(&store, &alice, "INBOX", &message("kept", &[])).await;
    assert_eq!(
        store.delete_folder(&alice, &folder("Old")).await.unwrap(),
        FolderChange::Done
    );
    assert!(
        store
            .folder(&alice, &folder("Old"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.messages(&alice, &folder("Old"), 0, 10).await.unwrap(),
        []
    );
    let inbox = store
        .messages(&alice, &folder("INBOX"), 0, 10)
        .await
        .unwrap();
    assert_eq!(inbox.iter().map(|m| m.uid).collect::<Vec<_>>(), [kept]);
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), inbox[0].size);
    assert_eq!(
        store.delete_folder(&alice, &folder("Old")).await.unwrap(),
        FolderChange::NoSuchFolder
    );
    // Created again: a new UIDVALIDITY is not needed for correctness here, but UIDs restart.
    store
        .create_folder(&alice, &folder("Old"), now())
        .await
        .unwrap();
    assert_eq!(append(&store, &alice, "Old", &message("new", &[])).await, 1);
}

async fn renaming_moves_messages_and_subfolders_and_inbox_stays(
    (store, alice): (Arc<dyn Store>, Address),
) {
    store
        .create_folder(&alice, &folder("Work"), now())
        .await
        .unwrap();
    store
        .create_folder(&alice, &folder("Work/2026"), now())
        .await
        .unwrap();
    append(&store, &alice, "Work", &message("w1", &["\\Seen"])).await;
    append(&store, &alice, "Work/2026", &message("w2", &[])).await;
    let at = now();
    assert_eq!(
        store
            .rename_folder(&alice, &folder("Work"), &folder("Jobs"), at)
            .await
            .unwrap(),
        FolderChange::Done
    );
    let mut names: Vec<String> = store
        .folders(&alice)
        .await
        .unwrap()
        .iter()
        .map(|f| f.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Drafts",
            "INBOX",
            "Jobs",
            "Jobs/2026",
            "Junk",
            "Sent",
            "Trash"
        ]
    );
    let jobs = store
        .messages(&alice, &folder("Jobs"), 0, 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].flags, ["\\Seen"]);
    assert_eq!(uids(&store, &alice, "Jobs/2026").await.len(), 1);
    for (from, to, refusal) in [
        ("Nope", "Other", FolderChange::NoSuchFolder),
        ("Jobs", "Sent", FolderChange::Exists),
        ("Jobs", "Jobs/deeper", FolderChange::IntoItself),
    ] {
        let changed = store
            .rename_folder(&alice, &folder(from), &folder(to), at)
            .await
            .unwrap();
        assert_eq!(changed, refusal, "{from} → {to}");
    }
    // INBOX: its messages move, INBOX stays, empty.
    append(&store, &alice, "INBOX", &message("i1", &[])).await;
    let changed = store
        .rename_folder(&alice, &folder("INBOX"), &folder("Old mail"), at)
        .await
        .unwrap();
    assert_eq!(changed, FolderChange::Done);
    assert_eq!(uids(&store, &alice, "INBOX").await, Vec::<u32>::new());
    assert_eq!(uids(&store, &alice, "Old mail").await.len(), 1);
    assert!(
        store
            .folder(&alice, &folder("INBOX"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn folders_are_subscribed_until_unsubscribed((store, alice): (Arc<dyn Store>, Address)) {
    store
        .create_folder(&alice, &folder("Lists"), now())
        .await
        .unwrap();
    let subscribed = |store: Arc<dyn Store>, alice: Address| async move {
        let mut names: Vec<String> = store
            .folders(&alice)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.subscribed)
            .map(|f| f.name.to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(subscribed(store.clone(), alice.clone()).await.len(), 6);
    assert!(
        store
            .set_subscribed(&alice, &folder("Lists"), false)
            .await
            .unwrap()
    );
    assert!(
        !subscribed(store.clone(), alice.clone())
            .await
            .contains(&"Lists".to_owned())
    );
    assert!(
        store
            .set_subscribed(&alice, &folder("Lists"), true)
            .await
            .unwrap()
    );
    assert!(
        subscribed(store.clone(), alice.clone())
            .await
            .contains(&"Lists".to_owned())
    );
    assert!(
        !store
            .set_subscribed(&alice, &folder("Nope"), true)
            .await
            .unwrap()
    );
    assert!(
        store
            .folder(&alice, &folder("Nope"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn of_racing_conditional_stores_one_applies_and_the_others_see_modified(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let uid = append(&store, &alice, "INBOX", &message("c", &[])).await;
    let modseq = store
        .messages(&alice, &folder("INBOX"), 0, 1)
        .await
        .unwrap()[0]
        .modseq;
    let writers: Vec<_> = (0..6)
        .map(|i| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                let change = FlagChange::Add(vec![format!("$writer{i}")]);
                store
                    .change_flags(&alice, &folder("INBOX"), uid, &change, Some(modseq))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut applied = Vec::new();
    for writer in writers {
        match writer.await.unwrap() {
            FlagUpdate::Applied {
                flags,
                modseq: after,
            } => {
                assert!(after > modseq);
                applied.push(flags);
            }
            FlagUpdate::Modified => {}
            FlagUpdate::NoSuchMessage => panic!("the message is there"),
        }
    }
    assert_eq!(applied.len(), 1, "{applied:?}");
    let stored = store
        .messages(&alice, &folder("INBOX"), 0, 1)
        .await
        .unwrap();
    assert_eq!(stored[0].flags, applied[0]);
    let gone = store
        .change_flags(
            &alice,
            &folder("INBOX"),
            uid + 1,
            &FlagChange::Add(vec![]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(gone, FlagUpdate::NoSuchMessage);
}

/// Folder-wide reads and deletes go a page at a time (500; 5 here): past the first page nothing
/// is skipped or read twice, and a folder is emptied whole.
async fn a_folder_larger_than_a_page_is_read_and_deleted_to_its_end(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let big = folder("Big");
    store.create_folder(&alice, &big, now()).await.unwrap();
    // Appended from several clients at once.
    let mut appends = tokio::task::JoinSet::new();
    for client in 0..3 {
        let (store, alice) = (store.clone(), alice.clone());
        appends.spawn(async move {
            for i in 0..4 {
                append(
                    &store,
                    &alice,
                    "Big",
                    &message(&format!("{client}-{i}"), &[]),
                )
                .await;
            }
        });
    }
    appends.join_all().await;
    assert_eq!(
        uids(&store, &alice, "Big").await,
        (1..=12).collect::<Vec<u32>>()
    );
    let mut pages = MessagePages::new(&*store, &alice, &big).of(5);
    let mut read = Vec::new();
    while let Some(page) = pages.next().await.unwrap() {
        read.push(page.iter().map(|m| m.uid).collect::<Vec<_>>());
    }
    assert_eq!(
        read,
        [vec![1, 2, 3, 4, 5], vec![6, 7, 8, 9, 10], vec![11, 12]]
    );
    assert_eq!(
        store.delete_folder(&alice, &big).await.unwrap(),
        FolderChange::Done
    );
    assert!(store.folder(&alice, &big).await.unwrap().is_none());
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), 0);
}

async fn a_name_that_comes_back_never_gets_a_uid_validity_it_had(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let mut seen = Vec::new();
    // DELETE and CREATE within one second, again and again.
    for _ in 0..3 {
        store
            .create_folder(&alice, &folder("F"), now())
            .await
            .unwrap();
        append(&store, &alice, "F", &message("one", &[])).await;
        let created = store.folder(&alice, &folder("F")).await.unwrap().unwrap();
        assert!(
            !seen.contains(&created.uid_validity),
            "{seen:?} {created:?}"
        );
        seen.push(created.uid_validity);
        store.delete_folder(&alice, &folder("F")).await.unwrap();
    }
    // RENAME onto an old name.
    store
        .create_folder(&alice, &folder("G"), now())
        .await
        .unwrap();
    store
        .rename_folder(&alice, &folder("G"), &folder("F"), now())
        .await
        .unwrap();
    let renamed = store.folder(&alice, &folder("F")).await.unwrap().unwrap();
    assert!(
        !seen.contains(&renamed.uid_validity),
        "{seen:?} {renamed:?}"
    );
    seen.push(renamed.uid_validity);
    // The address deleted and created anew: its folders too.
    let inbox = store
        .folder(&alice, &folder("INBOX"))
        .await
        .unwrap()
        .unwrap();
    seen.push(inbox.uid_validity);
    store.delete_account(&alice).await.unwrap();
    pushmail_tests::fixtures::mailbox_account(store.as_ref(), &alice).await;
    store
        .create_folder(&alice, &folder("F"), now())
        .await
        .unwrap();
    for name in ["INBOX", "F"] {
        let again = store.folder(&alice, &folder(name)).await.unwrap().unwrap();
        assert!(
            !seen.contains(&again.uid_validity),
            "{name}: {seen:?} {again:?}"
        );
    }
}
