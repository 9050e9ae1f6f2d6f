//! One conformance suite for the `Store` trait, run against both backends: DynamoDB (on the AWS
//! endpoint, moto in the test command) and the embedded redb store. Settings, domains, secrets,
//! accounts, tokens and audit, kept mail, the replay guard, failure counters and heartbeats
//! here; links and the activation outbox in `link_conformance.rs`. Each test gets a fresh table
//! or file.

use std::sync::Arc;

use chrono::{DateTime, Duration};
use pushmail_core::types::{
    Address, AdminToken, AuditEntry, DomainName, PushSecret, ServerSettings, StoredMail,
    TokenScope, now,
};
use pushmail_store::{
    AccountUpdate, DomainDelete, FailureScope, SecretAdd, Store, StoreError, Surface, TokenDelete,
};
use pushmail_tests::fixtures::{account, domain};

/// The store as it comes.
async fn plain_store(store: Arc<dyn Store>) -> Arc<dyn Store> {
    store
}

pushmail_tests::on_both_backends!(
    plain_store;
    settings_default_off_and_round_trip,
    domains_are_created_once_updated_listed_and_deleted,
    at_most_two_secrets_newest_first,
    racing_account_updates_are_each_applied_once,
    tokens_and_audit,
    kept_mail_is_listed_newest_first_per_recipient,
    the_replay_guard_forgets_after_expiry,
    failure_counters_count_per_scope_and_window,
    reservations_of_checks_that_died_expire_on_their_own,
    reservations_hold_the_limit_under_racing_attempts,
    the_newest_heartbeat_of_a_kind_wins,
);

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
                .reserve_attempt(&scope, window, expires, 3, window)
                .await
                .unwrap()
        );
    }
    // At the limit: refused, and nothing more is counted.
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 3, window)
            .await
            .unwrap()
    );
    // Reserved checks are not failures until they fail.
    assert_eq!(store.failures(&scope, window).await.unwrap(), 0);
    store
        .count_failure(&scope, window, expires, window)
        .await
        .unwrap();
    store
        .count_failure(&scope, window, expires, window)
        .await
        .unwrap();
    assert_eq!(store.failures(&scope, window).await.unwrap(), 2);
    // The third succeeded: its reservation comes back, and makes room for one more.
    store.release_attempt(&scope, window).await.unwrap();
    assert!(
        store
            .reserve_attempt(&scope, window, expires, 3, window)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 3, window)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_attempt(&source, window, expires, 3, window)
            .await
            .unwrap()
    );
    store
        .count_failure(&source, window, expires, window)
        .await
        .unwrap();
    assert_eq!(store.failures(&other_surface, window).await.unwrap(), 0);
    // Never below zero.
    store.release_attempt(&other_surface, window).await.unwrap();
    assert!(
        store
            .reserve_attempt(&other_surface, window, expires, 1, window)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reserve_attempt(&other_surface, window, expires, 1, window)
            .await
            .unwrap()
    );
    assert!(
        store
            .reserve_attempt(&scope, next, expires, 3, next)
            .await
            .unwrap()
    );
    store
        .count_failure(&scope, next, expires, next)
        .await
        .unwrap();
    assert_eq!(store.failures(&scope, next).await.unwrap(), 1);
    store.clear_failures(&scope, next).await.unwrap();
    assert_eq!(store.failures(&scope, next).await.unwrap(), 0);
    assert_eq!(store.failures(&source, window).await.unwrap(), 1);
}

async fn reservations_of_checks_that_died_expire_on_their_own(store: Arc<dyn Store>) {
    let window = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let expires = window + Duration::seconds(1800);
    let bob = Address::parse("crashed@x.example").unwrap();
    let scope = FailureScope::Account(Surface::Imap, &bob);
    // Five checks reserved and never finished: their process was killed mid-check.
    for _ in 0..5 {
        assert!(
            store
                .reserve_attempt(&scope, window, expires, 5, window)
                .await
                .unwrap()
        );
    }
    let soon = window + Duration::seconds(10);
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 5, soon)
            .await
            .unwrap()
    );
    // Once they are older than any check can be, they no longer count.
    let later = window + Duration::seconds(pushmail_store::RESERVATION_SECS + 1);
    assert!(
        store
            .reserve_attempt(&scope, window, expires, 5, later)
            .await
            .unwrap()
    );
    // Failures still do: four more reserved and failed fill the limit again.
    store
        .count_failure(&scope, window, expires, window)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(
            store
                .reserve_attempt(&scope, window, expires, 5, later)
                .await
                .unwrap()
        );
        store
            .count_failure(&scope, window, expires, window)
            .await
            .unwrap();
    }
    assert!(
        store
            .reserve_attempt(&scope, window, expires, 5, later)
            .await
            .unwrap()
    );
    store
        .count_failure(&scope, window, expires, window)
        .await
        .unwrap();
    let much_later = later + Duration::seconds(pushmail_store::RESERVATION_SECS + 1);
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, 5, much_later)
            .await
            .unwrap()
    );
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
                    .reserve_attempt(&scope, window, expires, 5, window)
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
