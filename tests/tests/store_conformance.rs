//! One conformance suite for the `Store` trait, run against both backends: DynamoDB (on the AWS
//! endpoint, moto in the test command) and the embedded redb store. Every ordering and race rule
//! of the trait is here; each test gets a fresh table or file.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Domain, DomainName,
    Link, LinkState, PushSecret, ServerSettings, StoredMail, TokenScope, now,
};
use pushmail_store::{
    AccountDelete, AccountUpdate, DomainDelete, FailureScope, LinkInsert, LinkQuery, SecretAdd,
    Store, StoreError, Surface, TokenDelete, Unlink,
};

/// The store as it comes.
async fn plain_store(store: Arc<dyn Store>) -> Arc<dyn Store> {
    store
}

pushmail_tests::on_both_backends!(
    plain_store;
    settings_default_off_and_round_trip,
    domains_are_created_once_updated_listed_and_deleted,
    at_most_two_secrets_newest_first,
    accounts_are_created_once_paged_and_deleted_with_their_link,
    a_link_is_replaced_only_by_a_higher_generation,
    unlink_honours_generation_and_registration,
    racing_inserts_leave_the_highest_generation_first_recorded,
    the_activation_outbox_is_claimed_once_and_completed_for_the_current_subscription,
    the_replay_guard_forgets_after_expiry,
    failure_counters_count_per_scope_and_window,
    reservations_hold_the_limit_under_racing_attempts,
    the_newest_heartbeat_of_a_kind_wins,
    integrated_accounts_page_newest_first_per_domain_and_overall,
    admin_removal_and_requeue,
    tokens_and_audit,
    kept_mail_is_listed_newest_first_per_recipient,
    racing_account_updates_are_each_applied_once,
    after_an_admin_removal_a_later_subscribe_links_whatever_its_generation,
    a_link_needs_the_account_as_its_password_was_checked,
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

async fn racing_account_updates_are_each_applied_once(store: Arc<dyn Store>) {
    let address = Address::parse("racer@acc.example").unwrap();
    store
        .create_account(&account(address.as_str()))
        .await
        .unwrap();
    let writers: Vec<_> = (0..10)
        .map(|i| {
            let (store, address) = (store.clone(), address.clone());
            tokio::spawn(async move {
                loop {
                    let mut current = store.account(&address).await.unwrap().unwrap();
                    current.pushed_folders.push(format!("F{i}"));
                    match store.update_account(&current).await.unwrap() {
                        AccountUpdate::Updated(_) => return,
                        AccountUpdate::Conflict => tokio::task::yield_now().await,
                        AccountUpdate::NotFound => panic!("the account vanished"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let done = store.account(&address).await.unwrap().unwrap();
    assert_eq!(done.revision, 10);
    let mut folders = done.pushed_folders.clone();
    folders.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("F{i}")).collect();
    expected.sort();
    assert_eq!(folders, expected, "no write undid another");
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

fn domain(name: &str) -> Domain {
    let mut domain = Domain::new(DomainName::parse(name).unwrap(), now());
    domain.push_enabled = true;
    domain
}

fn account(address: &str) -> Account {
    Account {
        address: Address::parse(address).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        enabled: true,
        display_name: None,
        pushed_folders: vec![],
        created_at: now(),
        revision: 0,
        quota_bytes: None,
        sender_aliases: Vec::new(),
        filing_rules: Vec::new(),
    }
}

/// Inserts a link for an account that exists as [`account`] makes it (created if missing).
async fn insert(store: &dyn Store, link: &Link, job: &ActivationJob) -> LinkInsert {
    let owner = account(link.address.as_str());
    if store.account(&link.address).await.unwrap().is_none() {
        store.put_account(&owner).await.unwrap();
    }
    store
        .insert_link(link, job, &owner, link.linked_at)
        .await
        .unwrap()
}

fn link(
    address: &str,
    registration: &str,
    generation: u64,
    at: DateTime<Utc>,
) -> (Link, ActivationJob) {
    let address = Address::parse(address).unwrap();
    let subscription_id = format!("sub_{}", uuid::Uuid::new_v4().simple());
    let link = Link {
        address: address.clone(),
        subscription_id: subscription_id.clone(),
        registration: registration.into(),
        generation,
        callback: "https://push.example.net/n".into(),
        device: None,
        state: LinkState::Linked,
        activation: ActivationState::Pending,
        linked_at: at,
        unlinked_at: None,
    };
    let job = ActivationJob {
        subscription_id,
        address,
        device: None,
        linked_at: at,
        attempts: 0,
        not_before: at,
    };
    (link, job)
}

async fn settings_default_off_and_round_trip(store: Arc<dyn Store>) {
    assert!(!store.server_settings().await.unwrap().push_enabled);
    store
        .put_server_settings(&ServerSettings { push_enabled: true })
        .await
        .unwrap();
    assert!(store.server_settings().await.unwrap().push_enabled);
}

async fn domains_are_created_once_updated_listed_and_deleted(store: Arc<dyn Store>) {
    let mut d = domain("a.example");
    assert!(store.create_domain(&d).await.unwrap());
    assert!(!store.create_domain(&d).await.unwrap());
    assert!(
        !store
            .update_domain(&domain("missing.example"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .domain(&DomainName::parse("missing.example").unwrap())
            .await
            .unwrap(),
        None
    );
    d.smtp_server = Some("smtp.a.example".into());
    assert!(store.update_domain(&d).await.unwrap());
    assert_eq!(
        store
            .domain(&d.name)
            .await
            .unwrap()
            .unwrap()
            .smtp_server
            .as_deref(),
        Some("smtp.a.example")
    );
    d.smtp_server = None;
    store.put_domain(&d).await.unwrap();
    assert_eq!(store.domain(&d.name).await.unwrap().unwrap(), d);
    assert!(store.create_domain(&domain("b.example")).await.unwrap());
    let names: Vec<String> = store
        .list_domains()
        .await
        .unwrap()
        .iter()
        .map(|d| d.name.to_string())
        .collect();
    assert_eq!(names, vec!["a.example", "b.example"]);

    store.put_account(&account("x@a.example")).await.unwrap();
    assert_eq!(
        store.delete_domain(&d.name).await.unwrap(),
        DomainDelete::HasAccounts
    );
    store
        .delete_account(&Address::parse("x@a.example").unwrap())
        .await
        .unwrap();
    assert_eq!(
        store.delete_domain(&d.name).await.unwrap(),
        DomainDelete::Deleted
    );
    assert_eq!(
        store.delete_domain(&d.name).await.unwrap(),
        DomainDelete::NotFound
    );
    assert_eq!(store.domain(&d.name).await.unwrap(), None);
    assert!(store.push_secrets(&d.name).await.unwrap().is_empty());
}

async fn at_most_two_secrets_newest_first(store: Arc<dyn Store>) {
    let d = domain("s.example");
    let secret = |id: &str, offset: i64| PushSecret {
        id: id.into(),
        value: format!("value-{id}"),
        created_at: now() + Duration::seconds(offset),
    };
    assert_eq!(
        store
            .add_push_secret(&d.name, &secret("s0", 0), 2)
            .await
            .unwrap(),
        SecretAdd::NoSuchDomain
    );
    store.create_domain(&d).await.unwrap();
    assert_eq!(
        store
            .add_push_secret(&d.name, &secret("s1", 0), 2)
            .await
            .unwrap(),
        SecretAdd::Added
    );
    assert_eq!(
        store
            .add_push_secret(&d.name, &secret("s2", 1), 2)
            .await
            .unwrap(),
        SecretAdd::Added
    );
    assert_eq!(
        store
            .add_push_secret(&d.name, &secret("s3", 2), 2)
            .await
            .unwrap(),
        SecretAdd::TooMany
    );
    let ids: Vec<String> = store
        .push_secrets(&d.name)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec!["s2", "s1"]);
    assert!(store.retire_push_secret(&d.name, "s1").await.unwrap());
    assert!(!store.retire_push_secret(&d.name, "s1").await.unwrap());
    assert_eq!(
        store
            .add_push_secret(&d.name, &secret("s3", 2), 2)
            .await
            .unwrap(),
        SecretAdd::Added
    );
    // Concurrent adds cannot pass the limit.
    assert!(store.retire_push_secret(&d.name, "s3").await.unwrap());
    let adds = futures::future::join_all((0..6).map(|i| {
        let store = store.clone();
        let name = d.name.clone();
        async move {
            store
                .add_push_secret(&name, &secret(&format!("r{i}"), 10 + i), 2)
                .await
                .unwrap()
        }
    }))
    .await;
    assert_eq!(adds.iter().filter(|a| **a == SecretAdd::Added).count(), 1);
    assert_eq!(store.push_secrets(&d.name).await.unwrap().len(), 2);
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
            .list_accounts(&d.name, cursor.as_deref(), 2)
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
        store.list_accounts(&d.name, Some("not-a-cursor!"), 2).await,
        Err(StoreError::BadCursor)
    ));

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

async fn the_replay_guard_forgets_after_expiry(store: Arc<dyn Store>) {
    let now = now();
    let expires = now + Duration::seconds(600);
    assert!(store.remember_signature("abc", now, expires).await.unwrap());
    assert!(
        !store
            .remember_signature("abc", now + Duration::seconds(599), expires)
            .await
            .unwrap()
    );
    assert!(store.remember_signature("def", now, expires).await.unwrap());
    let after = now + Duration::seconds(601);
    assert!(
        store
            .remember_signature("abc", after, after + Duration::seconds(600))
            .await
            .unwrap()
    );
}

async fn failure_counters_count_per_scope_and_window(store: Arc<dyn Store>) {
    let window = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let next = window + Duration::seconds(900);
    let alice = Address::parse("f@x.example").unwrap();
    let scope = FailureScope::Account(Surface::Subscribe, &alice);
    let other_surface = FailureScope::Account(Surface::SelfService, &alice);
    let source = FailureScope::Source(Surface::Subscribe, "192.0.2.1");
    let expires = next + Duration::seconds(900);
    assert_eq!(store.failures(&scope, window).await.unwrap(), 0);
    for _ in 0..3 {
        assert!(
            store
                .reserve_attempt(&scope, window, expires, 3)
                .await
                .unwrap()
        );
    }
    // At the limit: refused, and nothing more is counted.
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 3)
            .await
            .unwrap()
    );
    // Reserved checks are not failures until they fail.
    assert_eq!(store.failures(&scope, window).await.unwrap(), 0);
    store.count_failure(&scope, window).await.unwrap();
    store.count_failure(&scope, window).await.unwrap();
    assert_eq!(store.failures(&scope, window).await.unwrap(), 2);
    // The third succeeded: its reservation comes back, and makes room for one more.
    store.release_attempt(&scope, window).await.unwrap();
    assert!(
        store
            .reserve_attempt(&scope, window, expires, 3)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 3)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_attempt(&source, window, expires, 3)
            .await
            .unwrap()
    );
    store.count_failure(&source, window).await.unwrap();
    assert_eq!(store.failures(&other_surface, window).await.unwrap(), 0);
    // Never below zero.
    store.release_attempt(&other_surface, window).await.unwrap();
    assert!(
        store
            .reserve_attempt(&other_surface, window, expires, 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_attempt(&other_surface, window, expires, 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_attempt(&scope, next, expires, 3)
            .await
            .unwrap()
    );
    store.count_failure(&scope, next).await.unwrap();
    assert_eq!(store.failures(&scope, next).await.unwrap(), 1);
    store.clear_failures(&scope, next).await.unwrap();
    assert_eq!(store.failures(&scope, next).await.unwrap(), 0);
    assert_eq!(store.failures(&source, window).await.unwrap(), 1);
}

async fn reservations_hold_the_limit_under_racing_attempts(store: Arc<dyn Store>) {
    let window = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let expires = window + Duration::seconds(1800);
    let alice = Address::parse("race@x.example").unwrap();
    let attempts: Vec<_> = (0..24)
        .map(|_| {
            let (store, alice) = (store.clone(), alice.clone());
            tokio::spawn(async move {
                let scope = FailureScope::Account(Surface::Subscribe, &alice);
                store
                    .reserve_attempt(&scope, window, expires, 5)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut reserved = 0;
    for attempt in attempts {
        reserved += usize::from(attempt.await.unwrap());
    }
    assert_eq!(reserved, 5);
}

async fn the_newest_heartbeat_of_a_kind_wins(store: Arc<dyn Store>) {
    assert_eq!(store.latest_heartbeat("imap").await.unwrap(), None);
    let now = DateTime::from_timestamp_millis(now().timestamp_millis()).unwrap();
    store
        .record_heartbeat("imap", "a", now - Duration::seconds(90))
        .await
        .unwrap();
    store.record_heartbeat("imap", "b", now).await.unwrap();
    store
        .record_heartbeat("smtp", "a", now + Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(store.latest_heartbeat("imap").await.unwrap(), Some(now));
    store
        .record_heartbeat("imap", "b", now - Duration::seconds(120))
        .await
        .unwrap();
    assert_eq!(
        store.latest_heartbeat("imap").await.unwrap(),
        Some(now - Duration::seconds(90))
    );
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

async fn tokens_and_audit(store: Arc<dyn Store>) {
    let token = |id: &str, scope: TokenScope| AdminToken {
        id: id.into(),
        secret_hash: "00".repeat(32),
        scope,
        label: "t".into(),
        created_at: now(),
    };
    let d = DomainName::parse("audit.example").unwrap();
    store
        .put_token(&token("t1", TokenScope::Server))
        .await
        .unwrap();
    store
        .put_token(&token("t2", TokenScope::Domain(d.clone())))
        .await
        .unwrap();
    assert_eq!(
        store.token("t2").await.unwrap().unwrap().scope,
        TokenScope::Domain(d.clone())
    );
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);
    // The only server-wide token stays; with a second one, either may go, not both.
    assert_eq!(
        store.delete_token("t1").await.unwrap(),
        TokenDelete::LastServerToken
    );
    store
        .put_token(&token("t3", TokenScope::Server))
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.delete_token("t1"), store.delete_token("t3"));
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|o| *o == TokenDelete::Deleted);
    assert_eq!(
        outcomes,
        [TokenDelete::LastServerToken, TokenDelete::Deleted]
    );
    assert_eq!(
        store.delete_token("t9").await.unwrap(),
        TokenDelete::NotFound
    );
    // A domain token dies with its domain.
    store.create_domain(&domain("audit.example")).await.unwrap();
    assert_eq!(
        store.delete_domain(&d).await.unwrap(),
        DomainDelete::Deleted
    );
    assert_eq!(store.token("t2").await.unwrap(), None);

    let start = now();
    for i in 0..5 {
        let entry = AuditEntry {
            id: format!("e{i}"),
            at: start + Duration::milliseconds(i),
            actor: "t2".into(),
            action: "domain.update".into(),
            target: d.to_string(),
            domain: Some(d.clone()),
        };
        store.record_audit(&entry).await.unwrap();
    }
    store
        .record_audit(&AuditEntry {
            id: "s".into(),
            at: start,
            actor: "t1".into(),
            action: "server.push_on".into(),
            target: "server".into(),
            domain: None,
        })
        .await
        .unwrap();
    let first = store.list_audit(Some(&d), None, 3).await.unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["e4", "e3", "e2"]
    );
    let second = store
        .list_audit(Some(&d), first.cursor.as_deref(), 3)
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["e1", "e0"]
    );
    assert_eq!(second.cursor, None);
    let server = store.list_audit(None, None, 10).await.unwrap();
    assert_eq!(
        server
            .items
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["s"]
    );
    assert!(matches!(
        store.list_audit(None, first.cursor.as_deref(), 3).await,
        Err(StoreError::BadCursor)
    ));
}

async fn kept_mail_is_listed_newest_first_per_recipient(store: Arc<dyn Store>) {
    let to = Address::parse("m@x.example").unwrap();
    let start = now();
    for i in 0..3 {
        let mail = StoredMail {
            id: format!("m{i}"),
            to: to.clone(),
            subject: format!("subject {i}"),
            body: "body".into(),
            at: start + Duration::milliseconds(i),
        };
        store.record_mail(&mail).await.unwrap();
    }
    let other = StoredMail {
        id: "o".into(),
        to: Address::parse("n@x.example").unwrap(),
        subject: "s".into(),
        body: "b".into(),
        at: start,
    };
    store.record_mail(&other).await.unwrap();
    let ids: Vec<String> = store
        .mails(&to, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec!["m2", "m1"]);
    assert_eq!(store.mails(&to, 10).await.unwrap().len(), 3);
}
