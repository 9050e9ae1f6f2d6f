//! The `Store` trait's links on both backends (as `store_conformance.rs`): generations, stale and
//! racing SUBSCRIBEs, UNSUBSCRIBE, admin removal, the activation outbox, integrated-account
//! paging. Every ordering and race rule of links is here.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use pushmail_core::types::{
    ActivationJob, ActivationState, Address, DomainName, Link, LinkState, now,
};
use pushmail_store::{
    AccountDelete, AccountUpdate, LinkInsert, LinkQuery, Store, StoreError, Unlink,
};
use pushmail_tests::fixtures::{account, domain, insert, link};

/// The store as it comes.
async fn plain_store(store: Arc<dyn Store>) -> Arc<dyn Store> {
    store
}

pushmail_tests::on_both_backends!(
    plain_store;
    after_an_admin_removal_a_later_subscribe_links_whatever_its_generation,
    a_link_needs_the_account_as_its_password_was_checked,
    accounts_are_created_once_paged_and_deleted_with_their_link,
    a_link_is_replaced_only_by_a_higher_generation,
    unlink_honours_generation_and_registration,
    racing_inserts_leave_the_highest_generation_first_recorded,
    the_activation_outbox_is_claimed_once_and_completed_for_the_current_subscription,
    integrated_accounts_page_newest_first_per_domain_and_overall,
    admin_removal_and_requeue,
);

async fn after_an_admin_removal_a_later_subscribe_links_whatever_its_generation(
    store: Arc<dyn Store>,
) {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let (top, job) = link("max@acc.example", "r-max", u64::MAX, at);
    assert_eq!(insert(&*store, &top, &job).await, LinkInsert::Inserted);
    let removed_at = at + Duration::milliseconds(1500);
    store.remove_link(&top.address, removed_at).await.unwrap();
    assert_eq!(
        store.link(&top.address).await.unwrap().unwrap().state,
        LinkState::Removed
    );
    let owner = account("max@acc.example");
    let (again, again_job) = link("max@acc.example", "r-new", 1, removed_at);
    // Signed before the removal (in its second): stale, refused.
    let before = DateTime::from_timestamp(1_800_000_001, 0).unwrap();
    assert!(matches!(
        store
            .insert_link(&again, &again_job, &owner, before)
            .await
            .unwrap(),
        LinkInsert::Conflict(_)
    ));
    // Signed after it: links again, at generation 1.
    let after = DateTime::from_timestamp(1_800_000_002, 0).unwrap();
    assert_eq!(
        store
            .insert_link(&again, &again_job, &owner, after)
            .await
            .unwrap(),
        LinkInsert::Inserted
    );
    let current = store.link(&top.address).await.unwrap().unwrap();
    assert!(current.is_linked());
    assert_eq!(current.generation, 1);
    // An UNSUBSCRIBE's tombstone keeps its bar whenever the next SUBSCRIBE is signed.
    store.unlink(&top.address, "r-new", 1, after).await.unwrap();
    let (stale, stale_job) = link("max@acc.example", "r-old", 1, after);
    let later = after + Duration::hours(1);
    assert!(matches!(
        store
            .insert_link(&stale, &stale_job, &owner, later)
            .await
            .unwrap(),
        LinkInsert::Conflict(_)
    ));
}

async fn a_link_needs_the_account_as_its_password_was_checked(store: Arc<dyn Store>) {
    let at = now();
    let checked = account("checked@acc.example");
    let (l, job) = link("checked@acc.example", "r-1", 1, at);
    // Deleted meanwhile (never created here), disabled meanwhile, new password meanwhile.
    assert_eq!(
        store.insert_link(&l, &job, &checked, at).await.unwrap(),
        LinkInsert::AccountChanged
    );
    let mut disabled = checked.clone();
    disabled.enabled = false;
    store.put_account(&disabled).await.unwrap();
    assert_eq!(
        store.insert_link(&l, &job, &checked, at).await.unwrap(),
        LinkInsert::AccountChanged
    );
    let mut new_password = checked.clone();
    new_password.password_hash = "$argon2id$v=19$other".into();
    store.put_account(&new_password).await.unwrap();
    assert_eq!(
        store.insert_link(&l, &job, &checked, at).await.unwrap(),
        LinkInsert::AccountChanged
    );
    // Nothing was recorded by the refusals: no link, no activation job.
    assert_eq!(store.link(&l.address).await.unwrap(), None);
    assert!(
        store
            .due_activations(at + Duration::days(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.put_account(&checked).await.unwrap();
    assert_eq!(
        store.insert_link(&l, &job, &checked, at).await.unwrap(),
        LinkInsert::Inserted
    );
}

async fn accounts_are_created_once_paged_and_deleted_with_their_link(store: Arc<dyn Store>) {
    let d = domain("acc.example");
    store.create_domain(&d).await.unwrap();
    for local in ["e", "c", "a", "d", "b"] {
        assert!(
            store
                .create_account(&account(&format!("{local}@acc.example")))
                .await
                .unwrap()
        );
    }
    store
        .create_account(&account("z@other.example"))
        .await
        .unwrap();
    assert!(
        !store
            .create_account(&account("a@acc.example"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .update_account(&account("nobody@acc.example"))
            .await
            .unwrap(),
        AccountUpdate::NotFound
    );
    let mut a = account("a@acc.example");
    a.pushed_folders = vec!["Work".into()];
    let AccountUpdate::Updated(updated) = store.update_account(&a).await.unwrap() else {
        panic!("the update of revision 0 applies");
    };
    assert_eq!(updated.revision, 1);
    assert_eq!(store.account(&a.address).await.unwrap().unwrap(), updated);
    // A second writer working from revision 0 is refused, and changes nothing.
    let mut stale = account("a@acc.example");
    stale.enabled = false;
    assert_eq!(
        store.update_account(&stale).await.unwrap(),
        AccountUpdate::Conflict
    );
    assert_eq!(store.account(&a.address).await.unwrap().unwrap(), updated);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_accounts(&d.name, None, cursor.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|a| a.address.local_part().to_owned()));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    assert!(matches!(
        store
            .list_accounts(&d.name, None, Some("not-a-cursor!"), 2)
            .await,
        Err(StoreError::BadCursor)
    ));
    // Searched by the start of the address: only those, paged the same way, never another
    // domain's.
    for address in [
        "dan@acc.example",
        "dana@acc.example",
        "daniel@acc.example",
        "dana@other.example",
    ] {
        assert!(store.create_account(&account(address)).await.unwrap());
    }
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_accounts(&d.name, Some("dan"), cursor.as_deref(), 2)
            .await
            .unwrap();
        found.extend(page.items.iter().map(|a| a.address.to_string()));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        found,
        vec!["dan@acc.example", "dana@acc.example", "daniel@acc.example"]
    );
    let none = store
        .list_accounts(&d.name, Some("x"), None, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.cursor.is_none());

    let (l, job) = link("a@acc.example", "r-1", 1, now());
    insert(&*store, &l, &job).await;
    match store.delete_account(&a.address).await.unwrap() {
        AccountDelete::Deleted { live_link } => {
            assert_eq!(live_link.unwrap().subscription_id, l.subscription_id)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.link(&a.address).await.unwrap(), None);
    assert_eq!(
        store.delete_account(&a.address).await.unwrap(),
        AccountDelete::NotFound
    );
    let listed = store
        .list_links(&LinkQuery {
            domain: Some(d.name.clone()),
            activation: None,
            cursor: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(listed.items.is_empty());
}

async fn a_link_is_replaced_only_by_a_higher_generation(store: Arc<dyn Store>) {
    let now = now();
    let (first, job) = link("l@x.example", "r-1", 3, now);
    assert_eq!(insert(&*store, &first, &job).await, LinkInsert::Inserted);
    for (registration, generation) in [("r-1", 3), ("r-2", 3), ("r-2", 2)] {
        let (other, job) = link("l@x.example", registration, generation, now);
        assert_eq!(
            insert(&*store, &other, &job).await,
            LinkInsert::Conflict(first.clone())
        );
    }
    let (second, job) = link("l@x.example", "r-2", 4, now);
    assert_eq!(insert(&*store, &second, &job).await, LinkInsert::Inserted);
    assert_eq!(store.link(&second.address).await.unwrap().unwrap(), second);
    // A tombstone keeps its generation as the bar.
    let Unlink::Unlinked(tombstone) = store.unlink(&second.address, "r-2", 4, now).await.unwrap()
    else {
        panic!()
    };
    let (late, job) = link("l@x.example", "r-2", 4, now);
    assert_eq!(
        insert(&*store, &late, &job).await,
        LinkInsert::Conflict(tombstone)
    );
    let (relink, job) = link("l@x.example", "r-3", 5, now);
    assert_eq!(insert(&*store, &relink, &job).await, LinkInsert::Inserted);
}

async fn unlink_honours_generation_and_registration(store: Arc<dyn Store>) {
    let now = now();
    let address = Address::parse("u@x.example").unwrap();
    assert_eq!(
        store.unlink(&address, "r-1", 1, now).await.unwrap(),
        Unlink::NotLinked
    );
    let (current, job) = link("u@x.example", "r-1", 5, now);
    insert(&*store, &current, &job).await;
    for (registration, generation) in [("r-1", 4), ("r-2", 5), ("r-0", 1)] {
        assert_eq!(
            store
                .unlink(&address, registration, generation, now)
                .await
                .unwrap(),
            Unlink::Newer(current.clone())
        );
    }
    let Unlink::Unlinked(tombstone) = store.unlink(&address, "r-9", 7, now).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        (tombstone.state, tombstone.generation, tombstone.unlinked_at),
        (LinkState::Unlinked, 7, Some(now))
    );
    assert_eq!(store.link(&address).await.unwrap().unwrap().generation, 7);
    assert_eq!(
        store.unlink(&address, "r-9", 7, now).await.unwrap(),
        Unlink::NotLinked
    );
}

async fn racing_inserts_leave_the_highest_generation_first_recorded(store: Arc<dyn Store>) {
    let now = now();
    let attempts: Vec<(Link, ActivationJob)> = (0..20u64)
        .map(|i| link("race@x.example", &format!("r-{i}"), (i * 7) % 10 + 1, now))
        .collect();
    let outcomes = futures::future::join_all(attempts.iter().map(|(l, j)| {
        let store = store.clone();
        async move { insert(&*store, l, j).await }
    }))
    .await;
    let current = store.link(&attempts[0].0.address).await.unwrap().unwrap();
    assert_eq!(current.generation, 10);
    let winners: Vec<&Link> = attempts
        .iter()
        .zip(&outcomes)
        .filter(|((l, _), o)| l.generation == 10 && **o == LinkInsert::Inserted)
        .map(|((l, _), _)| l)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of the equal top generations is recorded"
    );
    assert_eq!(winners[0].subscription_id, current.subscription_id);
}

async fn the_activation_outbox_is_claimed_once_and_completed_for_the_current_subscription(
    store: Arc<dyn Store>,
) {
    let now = now();
    let (l, job) = link("o@x.example", "r-1", 1, now);
    insert(&*store, &l, &job).await;
    assert_eq!(
        store.due_activations(now, 10).await.unwrap(),
        vec![job.clone()]
    );
    // Many claimers, one winner.
    let claims = futures::future::join_all((0..8).map(|_| {
        let store = store.clone();
        let id = l.subscription_id.clone();
        async move {
            store
                .claim_activation(&id, now, now + Duration::seconds(60))
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(claims.iter().filter(|c| c.is_some()).count(), 1);
    assert!(
        store.due_activations(now, 10).await.unwrap().is_empty(),
        "a leased job is not due"
    );
    store
        .defer_activation(&l.subscription_id, now + Duration::seconds(30))
        .await
        .unwrap();
    assert!(
        store
            .claim_activation(&l.subscription_id, now, now)
            .await
            .unwrap()
            .is_none()
    );
    let later = now + Duration::seconds(31);
    let claimed = store
        .claim_activation(&l.subscription_id, later, later + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.attempts, 1);
    assert!(store.complete_activation(&claimed).await.unwrap());
    assert_eq!(
        store.link(&l.address).await.unwrap().unwrap().activation,
        ActivationState::Sent
    );
    assert!(
        store
            .claim_activation(&l.subscription_id, later, later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.due_activations(later, 10).await.unwrap().is_empty());

    // A superseded subscription's job completes as "not current" and leaves the new link alone.
    let (old, old_job) = link("p@x.example", "r-1", 1, now);
    insert(&*store, &old, &old_job).await;
    let (new, new_job) = link("p@x.example", "r-2", 2, now);
    insert(&*store, &new, &new_job).await;
    assert!(!store.complete_activation(&old_job).await.unwrap());
    assert_eq!(
        store.link(&new.address).await.unwrap().unwrap().activation,
        ActivationState::Pending
    );
    store
        .discard_activation(&new_job.subscription_id)
        .await
        .unwrap();
    assert!(store.due_activations(later, 10).await.unwrap().is_empty());
}

async fn integrated_accounts_page_newest_first_per_domain_and_overall(store: Arc<dyn Store>) {
    let start = now() - Duration::hours(1);
    let mut expected = Vec::new();
    for i in 0..25 {
        let (mut l, job) = link(
            &format!("user{i:02}@page.example"),
            "r",
            1,
            start + Duration::milliseconds(i),
        );
        if i % 4 == 0 {
            l.activation = ActivationState::Sent;
        }
        insert(&*store, &l, &job).await;
        expected.push(l.address.to_string());
    }
    let (other, job) = link(
        "someone@elsewhere.example",
        "r",
        1,
        start + Duration::milliseconds(7),
    );
    insert(&*store, &other, &job).await;
    expected.reverse();

    let collect = |domain: Option<&str>, activation: Option<ActivationState>| {
        let store = store.clone();
        let domain = domain.map(|d| DomainName::parse(d).unwrap());
        async move {
            let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
            loop {
                let query = LinkQuery {
                    domain: domain.clone(),
                    activation,
                    cursor,
                    limit: 10,
                };
                let page = store.list_links(&query).await.unwrap();
                pages += 1;
                seen.extend(page.items.iter().map(|l| l.address.to_string()));
                match page.cursor {
                    Some(next) => cursor = Some(next),
                    None => return (seen, pages),
                }
            }
        }
    };
    let (seen, pages) = collect(Some("page.example"), None).await;
    assert_eq!((seen.clone(), pages), (expected.clone(), 3));
    let (sent, _) = collect(Some("page.example"), Some(ActivationState::Sent)).await;
    let expected_sent: Vec<String> = (0..25)
        .rev()
        .filter(|i| i % 4 == 0)
        .map(|i| format!("user{i:02}@page.example"))
        .collect();
    assert_eq!(sent, expected_sent);
    let (all, _) = collect(None, None).await;
    assert_eq!(all.len(), 26);
    assert_eq!(
        all.iter()
            .filter(|a| a.ends_with("page.example"))
            .cloned()
            .collect::<Vec<_>>(),
        expected
    );

    let first = store
        .list_links(&LinkQuery {
            domain: Some(DomainName::parse("page.example").unwrap()),
            activation: None,
            cursor: None,
            limit: 1,
        })
        .await
        .unwrap();
    let foreign = LinkQuery {
        domain: Some(DomainName::parse("elsewhere.example").unwrap()),
        activation: None,
        cursor: first.cursor,
        limit: 1,
    };
    assert!(matches!(
        store.list_links(&foreign).await,
        Err(StoreError::BadCursor)
    ));
}

async fn admin_removal_and_requeue(store: Arc<dyn Store>) {
    let now = now();
    let (l, job) = link("rm@x.example", "r-1", 2, now);
    insert(&*store, &l, &job).await;
    let claimed = store
        .claim_activation(&l.subscription_id, now, now)
        .await
        .unwrap()
        .unwrap();
    store.complete_activation(&claimed).await.unwrap();
    assert!(store.requeue_activation(&job).await.unwrap());
    assert_eq!(
        store.link(&l.address).await.unwrap().unwrap().activation,
        ActivationState::Pending
    );
    assert_eq!(store.due_activations(now, 10).await.unwrap().len(), 1);

    let removed = store.remove_link(&l.address, now).await.unwrap().unwrap();
    assert_eq!(removed.subscription_id, l.subscription_id);
    assert!(removed.is_linked(), "the link as it was");
    assert_eq!(store.remove_link(&l.address, now).await.unwrap(), None);
    let tombstone = store.link(&l.address).await.unwrap().unwrap();
    assert_eq!(
        (tombstone.state, tombstone.generation),
        (LinkState::Removed, 2)
    );
    assert!(!store.requeue_activation(&job).await.unwrap());
    let listed = store
        .list_links(&LinkQuery {
            domain: None,
            activation: None,
            cursor: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(listed.items.iter().all(|i| i.address != l.address));
}
