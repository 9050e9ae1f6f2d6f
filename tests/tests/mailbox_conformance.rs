//! The mailbox store's rules, on both backends: DynamoDB with bodies in S3 (moto in the test
//! command) and the embedded redb store.

use std::sync::Arc;

use chrono::Utc;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, MAX_MESSAGES_PER_APPEND, NewMessage, SpecialUse};
use pushmail_core::types::{Address, now};
use pushmail_store::{ChangeKind, Delivery, EmbeddedStore, MailboxStore, RelayJob, Store};
use pushmail_tests::fixtures::{inbox, new_message, with_mailbox_account};

pushmail_tests::on_both_backends!(
    with_mailbox_account;
    every_account_has_inbox_and_the_special_folders_once,
    deliveries_get_increasing_uids_with_their_envelope_body_and_change,
    racing_deliveries_never_share_or_skip_a_uid,
    racing_multi_appends_store_all_or_none_with_consecutive_uids,
    over_quota_and_unknown_folders_store_nothing,
    the_relay_queue_leases_each_job_to_one_worker,
    racing_flag_changes_are_each_applied_with_their_own_modseq,
    racing_recent_claims_give_each_message_to_one_session,
    a_deleted_account_leaves_nothing_to_whoever_takes_its_address,
    a_message_header_is_its_bytes_up_to_the_blank_line,
);

fn message(subject: &str, bytes: usize) -> NewMessage {
    let mut raw = format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\n\r\n"
    )
    .into_bytes();
    raw.resize(raw.len().max(bytes), b'x');
    new_message(raw)
}

async fn every_account_has_inbox_and_the_special_folders_once(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let before = store.folders(&alice).await.unwrap();
    store.create_default_folders(&alice, now()).await.unwrap();
    assert_eq!(store.folders(&alice).await.unwrap(), before, "idempotent");
    let mut names: Vec<_> = before.iter().map(|f| f.name.as_str().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["Drafts", "INBOX", "Junk", "Sent", "Trash"]);
    let sent = before.iter().find(|f| f.name.as_str() == "Sent").unwrap();
    assert_eq!(sent.special_use, Some(SpecialUse::Sent));
    assert!(before.iter().all(|f| f.uid_next == 1 && f.uid_validity > 0));
}

async fn deliveries_get_increasing_uids_with_their_envelope_body_and_change(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    let mut uids = Vec::new();
    for i in 1..=3 {
        let delivery = store
            .deliver(&alice, &inbox(), &message(&format!("m{i}"), 0), None)
            .await
            .unwrap();
        let Delivery::Stored {
            uid,
            uid_validity,
            change,
            ..
        } = delivery
        else {
            panic!("{delivery:?}");
        };
        assert_eq!((uid_validity, change), (folder.uid_validity, i as u64));
        uids.push(uid);
    }
    assert_eq!(uids, [1, 2, 3]);
    let listed = store.messages(&alice, &inbox(), 1, 10).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.uid).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(listed[0].envelope.subject.as_deref(), Some("m2"));
    assert_eq!(listed[0].envelope.from.as_deref(), Some("bob@example.org"));
    let body = store
        .message_body(&alice, &inbox(), 3)
        .await
        .unwrap()
        .unwrap();
    assert!(body.starts_with(b"From: Bob") && body.ends_with(b"Subject: m3\r\n\r\n"));
    assert_eq!(store.message_body(&alice, &inbox(), 4).await.unwrap(), None);
    let changes = store.changes_since(&alice, 1, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.counter, c.uid, c.kind))
            .collect::<Vec<_>>(),
        [(2, 2, ChangeKind::Added), (3, 3, ChangeKind::Added)]
    );
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!((folder.uid_next, folder.messages), (4, 3));
    let all = store.messages(&alice, &inbox(), 0, 10).await.unwrap();
    let usage: u64 = all.iter().map(|m| m.size).sum();
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), usage);
}

async fn racing_deliveries_never_share_or_skip_a_uid((store, alice): (Arc<dyn Store>, Address)) {
    let deliveries: Vec<_> = (0..50)
        .map(|i| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                match store
                    .deliver(&alice, &inbox(), &message(&format!("r{i}"), 0), None)
                    .await
                    .unwrap()
                {
                    Delivery::Stored { uid, .. } => uid,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let mut uids = Vec::new();
    for delivery in deliveries {
        uids.push(delivery.await.unwrap());
    }
    uids.sort();
    assert_eq!(uids, (1..=50).collect::<Vec<u32>>());
    assert_eq!(store.changes_since(&alice, 0, 100).await.unwrap().len(), 50);
}

async fn racing_multi_appends_store_all_or_none_with_consecutive_uids(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let mut racing = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (batch_store, batch_alice) = (store.clone(), alice.clone());
        racing.spawn(async move {
            let (store, alice) = (batch_store, batch_alice);
            let batch: Vec<NewMessage> = (0..5).map(|k| message(&format!("b{i}-{k}"), 0)).collect();
            match store
                .append_all(&alice, &inbox(), &batch, None)
                .await
                .unwrap()
            {
                Delivery::Stored { uid, .. } => (Some(i), uid),
                other => panic!("{other:?}"),
            }
        });
        let (store, alice) = (store.clone(), alice.clone());
        racing.spawn(async move {
            let one = message(&format!("single {i}"), 0);
            match store.deliver(&alice, &inbox(), &one, None).await.unwrap() {
                Delivery::Stored { uid, .. } => (None, uid),
                other => panic!("{other:?}"),
            }
        });
    }
    let mut taken = Vec::new();
    for (batch, first) in racing.join_all().await {
        let count = if batch.is_some() { 5 } else { 1 };
        taken.extend(first..first + count);
        let Some(i) = batch else { continue };
        // The batch's messages hold consecutive UIDs, in the order given.
        let stored = store
            .messages(&alice, &inbox(), first - 1, 5)
            .await
            .unwrap();
        let subjects: Vec<String> = stored
            .iter()
            .map(|m| m.envelope.subject.clone().unwrap_or_default())
            .collect();
        let expected: Vec<String> = (0..5).map(|k| format!("b{i}-{k}")).collect();
        assert_eq!(subjects, expected);
    }
    taken.sort();
    assert_eq!(taken, (1..=60).collect::<Vec<u32>>());
    assert_eq!(store.changes_since(&alice, 0, 100).await.unwrap().len(), 60);

    // All or none: over the quota, into no folder, none, or too many: nothing is stored.
    let usage = store.mailbox_usage(&alice).await.unwrap();
    let big: Vec<NewMessage> = (0..3).map(|k| message(&format!("q{k}"), 400)).collect();
    let quota = Some(usage + 1000);
    assert_eq!(
        store
            .append_all(&alice, &inbox(), &big, quota)
            .await
            .unwrap(),
        Delivery::OverQuota
    );
    let nowhere = FolderName::parse("Nowhere").unwrap();
    assert_eq!(
        store
            .append_all(&alice, &nowhere, &big, None)
            .await
            .unwrap(),
        Delivery::NoSuchFolder
    );
    let too_many: Vec<NewMessage> = (0..=MAX_MESSAGES_PER_APPEND)
        .map(|k| message(&format!("m{k}"), 0))
        .collect();
    assert!(
        store
            .append_all(&alice, &inbox(), &too_many, None)
            .await
            .is_err()
    );
    assert!(store.append_all(&alice, &inbox(), &[], None).await.is_err());
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), usage);
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(
        (folder.uid_next, folder.messages),
        (61, 60),
        "no UID spent on a refusal"
    );
    // The most one APPEND may hold fits one write.
    let most = &too_many[..MAX_MESSAGES_PER_APPEND];
    let stored = store
        .append_all(&alice, &inbox(), most, None)
        .await
        .unwrap();
    assert!(
        matches!(stored, Delivery::Stored { uid: 61, .. }),
        "{stored:?}"
    );
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.uid_next, 61 + MAX_MESSAGES_PER_APPEND as u32);
}

async fn over_quota_and_unknown_folders_store_nothing((store, alice): (Arc<dyn Store>, Address)) {
    let first = store
        .deliver(&alice, &inbox(), &message("a", 600), Some(1000))
        .await
        .unwrap();
    assert!(matches!(first, Delivery::Stored { uid: 1, .. }));
    assert_eq!(
        store
            .deliver(&alice, &inbox(), &message("b", 600), Some(1000))
            .await
            .unwrap(),
        Delivery::OverQuota
    );
    let nowhere = FolderName::parse("Nowhere").unwrap();
    assert_eq!(
        store
            .deliver(&alice, &nowhere, &message("c", 10), None)
            .await
            .unwrap(),
        Delivery::NoSuchFolder
    );
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), 600);
    assert_eq!(store.changes_since(&alice, 0, 10).await.unwrap().len(), 1);
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.uid_next, 2, "no UID spent on a refusal");
}

#[tokio::test]
async fn a_delivered_message_survives_reopening_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap();
    let (store, alice) = with_mailbox_account(Arc::new(store)).await;
    store
        .deliver(&alice, &inbox(), &message("kept", 0), None)
        .await
        .unwrap();
    drop(store);
    let reopened = EmbeddedStore::open(&dir.path().join("pushmail.redb")).unwrap();
    let kept = reopened.messages(&alice, &inbox(), 0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].internal_date <= Utc::now());
}

async fn the_relay_queue_leases_each_job_to_one_worker((store, alice): (Arc<dyn Store>, Address)) {
    let at = now();
    let bob = Address::parse("bob@remote.example").unwrap();
    let carol = Address::parse("carol@remote.example").unwrap();
    let id = format!("relay-{}", uuid::Uuid::new_v4().simple());
    let job = RelayJob {
        id: id.clone(),
        sender: alice.clone(),
        recipients: vec![bob.clone(), carol.clone()],
        created_at: at,
        not_before: at,
        attempts: 0,
        last_error: None,
    };
    store
        .enqueue_relay(&job, b"Subject: out\r\n\r\nbody\r\n")
        .await
        .unwrap();
    let due = store.due_relays(at, 100).await.unwrap();
    assert!(due.iter().any(|j| j.id == id && j.recipients.len() == 2));
    // Ten workers race for it: exactly one holds it.
    let lease = at + chrono::Duration::minutes(15);
    let claims = futures::future::join_all((0..10).map(|_| {
        let (store, id) = (store.clone(), id.clone());
        async move { store.claim_relay(&id, at, lease).await.unwrap() }
    }))
    .await;
    assert_eq!(claims.iter().filter(|c| c.is_some()).count(), 1);
    assert!(
        !store
            .due_relays(at, 100)
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == id)
    );
    assert_eq!(
        store.relay_body(&id).await.unwrap().as_deref(),
        Some(&b"Subject: out\r\n\r\nbody\r\n"[..])
    );
    // Bob taken, Carol to try again later.
    let retry = at + chrono::Duration::minutes(2);
    store
        .defer_relay(&id, std::slice::from_ref(&carol), retry, "451 later")
        .await
        .unwrap();
    let again = store.due_relays(retry, 100).await.unwrap();
    let again = again.iter().find(|j| j.id == id).expect("due again");
    assert_eq!(again.recipients, vec![carol]);
    assert_eq!(
        (again.attempts, again.last_error.as_deref()),
        (1, Some("451 later"))
    );
    store.finish_relay(&id).await.unwrap();
    assert!(store.relay_body(&id).await.unwrap().is_none());
    assert!(
        store
            .claim_relay(&id, retry, lease)
            .await
            .unwrap()
            .is_none()
    );
    // Finishing twice, or deferring a finished job, is harmless.
    store.finish_relay(&id).await.unwrap();
    store.defer_relay(&id, &[], retry, "late").await.unwrap();
    assert!(
        !store
            .due_relays(retry, 100)
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == id)
    );
}

async fn racing_flag_changes_are_each_applied_with_their_own_modseq(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let Delivery::Stored {
        uid,
        modseq,
        change,
        ..
    } = store
        .deliver(&alice, &inbox(), &message("flags", 10), None)
        .await
        .unwrap()
    else {
        panic!("not stored");
    };
    // Ten writers add a flag each at once: none is lost.
    let added = futures::future::join_all((0..10).map(|i| {
        let (store, alice) = (store.clone(), alice.clone());
        async move {
            let flag = FlagChange::Add(vec![format!("$Label{i}")]);
            store
                .update_flags(&alice, &inbox(), uid, &flag)
                .await
                .unwrap()
        }
    }))
    .await;
    assert!(added.iter().all(Option::is_some));
    let meta = &store.messages(&alice, &inbox(), 0, 10).await.unwrap()[0];
    assert_eq!(meta.flags.len(), 10, "{:?}", meta.flags);
    assert_eq!(meta.modseq, modseq + 10);
    let folder = store.folder(&alice, &inbox()).await.unwrap().unwrap();
    assert_eq!(folder.highest_modseq, modseq + 10);
    let changes = store.changes_since(&alice, change, 100).await.unwrap();
    assert_eq!(changes.len(), 10);
    assert!(
        changes
            .iter()
            .all(|c| c.kind == ChangeKind::Flags && c.uid == uid)
    );
    // Case-insensitive, once; no change, no new modseq; removal; unknown message.
    let same = FlagChange::Add(vec!["$label0".into()]);
    store
        .update_flags(&alice, &inbox(), uid, &same)
        .await
        .unwrap();
    assert_eq!(
        store
            .folder(&alice, &inbox())
            .await
            .unwrap()
            .unwrap()
            .highest_modseq,
        modseq + 10
    );
    let replaced = store
        .update_flags(
            &alice,
            &inbox(),
            uid,
            &FlagChange::Replace(vec!["\\Seen".into()]),
        )
        .await
        .unwrap();
    assert_eq!(replaced, Some(vec!["\\Seen".to_owned()]));
    let removed = store
        .update_flags(
            &alice,
            &inbox(),
            uid,
            &FlagChange::Remove(vec!["\\SEEN".into()]),
        )
        .await
        .unwrap();
    assert_eq!(removed, Some(vec![]));
    assert_eq!(
        store
            .update_flags(&alice, &inbox(), uid + 99, &same)
            .await
            .unwrap(),
        None
    );
}

async fn a_deleted_account_leaves_nothing_to_whoever_takes_its_address(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let old = store.account(&alice).await.unwrap().unwrap();
    let mut mine = message("the old owner's", 0);
    mine.owner_known_at = Some(old.created_at);
    for _ in 0..3 {
        assert!(matches!(
            store.deliver(&alice, &inbox(), &mine, None).await.unwrap(),
            Delivery::Stored { .. }
        ));
    }
    assert!(store.mailbox_usage(&alice).await.unwrap() > 0);
    assert!(matches!(
        store.delete_account(&alice).await.unwrap(),
        pushmail_store::AccountDelete::Deleted { .. }
    ));
    // Gone with the account: folders, messages, usage, the change log.
    assert!(store.folders(&alice).await.unwrap().is_empty());
    assert_eq!(store.mailbox_usage(&alice).await.unwrap(), 0);
    assert_eq!(store.latest_change(&alice).await.unwrap(), 0);
    // A delivery for the deleted account lands nowhere.
    assert_eq!(
        store.deliver(&alice, &inbox(), &mine, None).await.unwrap(),
        Delivery::NoSuchAccount
    );
    // A new person at the address, created later, starts empty; what was meant for the old
    // owner (known before the new one was created) is refused, what is meant for them is not.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut new = pushmail_tests::fixtures::account(alice.as_str());
    new.created_at = Utc::now();
    assert!(store.create_account(&new).await.unwrap());
    store.create_default_folders(&alice, now()).await.unwrap();
    let new = store.account(&alice).await.unwrap().unwrap();
    assert!(
        store
            .messages(&alice, &inbox(), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.deliver(&alice, &inbox(), &mine, None).await.unwrap(),
        Delivery::NoSuchAccount
    );
    assert!(matches!(
        store.append(&alice, &inbox(), &mine, None).await.unwrap(),
        Delivery::NoSuchAccount
    ));
    let mut theirs = message("the new owner's", 0);
    theirs.owner_known_at = Some(new.created_at);
    assert!(matches!(
        store
            .deliver(&alice, &inbox(), &theirs, None)
            .await
            .unwrap(),
        Delivery::Stored { uid: 1, .. }
    ));
    assert_eq!(
        store.messages(&alice, &inbox(), 0, 10).await.unwrap().len(),
        1
    );
}

/// IMAP's \Recent: sessions claiming at once each get a disjoint part, together every UID up to
/// the highest claimed, and a claim below the mark or on no folder takes nothing.
async fn racing_recent_claims_give_each_message_to_one_session(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let claims = (1..=16u32).map(|up_to| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.claim_recent(&alice, &inbox(), up_to * 4).await })
    });
    let mut taken: Vec<u32> = Vec::new();
    for claim in claims {
        taken.extend(claim.await.unwrap().unwrap());
    }
    taken.sort_unstable();
    assert_eq!(taken, (1..=64).collect::<Vec<_>>(), "each UID exactly once");
    assert_eq!(
        store
            .folder(&alice, &inbox())
            .await
            .unwrap()
            .unwrap()
            .recent_up_to,
        64
    );
    assert!(
        store
            .claim_recent(&alice, &inbox(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let nowhere = FolderName::parse("Nowhere").unwrap();
    assert!(
        store
            .claim_recent(&alice, &nowhere, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.folder(&alice, &nowhere).await.unwrap().is_none(),
        "no folder made"
    );
}

async fn a_message_header_is_its_bytes_up_to_the_blank_line(
    (store, alice): (Arc<dyn Store>, Address),
) {
    let header = b"From: Bob <bob@example.org>\r\nSubject: h\r\n\r\n".to_vec();
    // A header far longer than one chunk of a read, before a body of megabytes (S3's is read
    // off its stream up to the blank line).
    let long_header = [
        &b"Subject: long\r\n"[..],
        &b" folded, and folded again, far past any one read of the stream\r\n".repeat(6_000),
        b"\r\n",
    ]
    .concat();
    let cases: [(Vec<u8>, Vec<u8>); 4] = [
        (
            [&long_header[..], &b"text\r\n\r\n".repeat(300_000)].concat(),
            long_header.clone(),
        ),
        (
            [&header[..], b"the text\r\n\r\nmore\r\n"].concat(),
            header.clone(),
        ),
        // No blank line: all of it is header.
        (b"Subject: no body".to_vec(), b"Subject: no body".to_vec()),
        (
            b"Subject: bare\n\ntext\n".to_vec(),
            b"Subject: bare\n\n".to_vec(),
        ),
    ];
    for (raw, wanted) in cases {
        let mut new = message("x", 0);
        new.raw = raw;
        let Delivery::Stored { uid, .. } =
            store.deliver(&alice, &inbox(), &new, None).await.unwrap()
        else {
            panic!("not stored");
        };
        let got = store.message_header(&alice, &inbox(), uid).await.unwrap();
        assert_eq!(got, Some(wanted));
    }
    assert_eq!(
        store.message_header(&alice, &inbox(), 99).await.unwrap(),
        None
    );
}
