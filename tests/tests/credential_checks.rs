//! A login verified a moment ago (the verified-credentials cache) hashes nothing, so it takes no
//! place among the account's checks in progress and gives none back: those places bound
//! hashing and parallel guesses. It still clears the account's failures ("in a row"), and while
//! failures fill the window it is refused like any check (`imap_hardening.rs`).

use std::sync::Arc;

use chrono::{Duration, Utc};
use pushmail_core::types::Address;
use pushmail_store::credentials::{CredentialLimits, check_credentials};
use pushmail_store::{FailureScope, Store, Surface};

pushmail_tests::on_both_backends!(
    with_alice;
    a_verified_login_is_served_while_checks_in_progress_fill_the_places,
    a_verified_login_clears_the_failures_before_it,
);

const RIGHT: &str = pushmail_tests::PASSWORD;

/// A store with alice, whose password is [`RIGHT`].
async fn with_alice(store: Arc<dyn Store>) -> (Arc<dyn Store>, Address) {
    let mut alice = pushmail_tests::fixtures::account("alice@example.com");
    alice.password_hash = pushmail_core::password::hash_password(RIGHT).unwrap();
    assert!(store.create_account(&alice).await.unwrap());
    (store, alice.address)
}

async fn login(store: &dyn Store, surface: Surface, alice: &Address, password: &str) -> bool {
    let checked = check_credentials(
        store,
        surface,
        alice,
        password,
        Some("192.0.2.10"),
        Utc::now(),
    )
    .await;
    checked.is_ok()
}

async fn a_verified_login_is_served_while_checks_in_progress_fill_the_places(
    (store, alice): (Arc<dyn Store>, Address),
) {
    assert!(login(store.as_ref(), Surface::Imap, &alice, RIGHT).await);
    // Five checks of the account in progress (another client's sessions, or guesses).
    let now = Utc::now();
    let window = CredentialLimits::get().window_start(now);
    let expires = window + Duration::hours(1);
    let scope = FailureScope::Account(Surface::Imap, &alice);
    let limit = CredentialLimits::get().account_failures;
    for _ in 0..limit {
        assert!(
            store
                .reserve_attempt(&scope, window, expires, limit, now)
                .await
                .unwrap()
        );
    }
    // Served at once, not after waiting for a place and then "busy".
    assert!(login(store.as_ref(), Surface::Imap, &alice, RIGHT).await);
    // It took no place and gave none back: the five are still held.
    assert!(
        !store
            .reserve_attempt(&scope, window, expires, limit, now)
            .await
            .unwrap()
    );
}

async fn a_verified_login_clears_the_failures_before_it((store, alice): (Arc<dyn Store>, Address)) {
    assert!(login(store.as_ref(), Surface::Submission, &alice, RIGHT).await);
    for _ in 0..2 {
        assert!(!login(store.as_ref(), Surface::Submission, &alice, "wrong").await);
    }
    let scope = FailureScope::Account(Surface::Submission, &alice);
    let window = CredentialLimits::get().window_start(Utc::now());
    assert_eq!(store.failures(&scope, window).await.unwrap(), 2);
    assert!(login(store.as_ref(), Surface::Submission, &alice, RIGHT).await);
    assert_eq!(store.failures(&scope, window).await.unwrap(), 0);
}
