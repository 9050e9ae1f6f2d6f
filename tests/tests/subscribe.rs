//! The Subscribe URL against a real DynamoDB/SES endpoint (spec §1–3): SUBSCRIBE, replays and
//! generations, UNSUBSCRIBE, racing SUBSCRIBEs, the activation mail. Every test asserts the
//! answer and what the store holds afterwards. Refusals: `subscribe_refusals.rs`.

use chrono::{Duration, Utc};
use pushmail_core::types::{ActivationState, LinkState};
use pushmail_push::mailer::ACTIVATION_SUBJECT;
use pushmail_tests::subscribe::assert_subscribed;
use pushmail_tests::{Harness, PASSWORD, Setup, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn subscribe_links_the_account_and_sends_the_activation_mail() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // The device may type the address in any case.
    let mut body = h.subscribe_body(&alice, "r-7f3a", 3);
    body["email"] = json!(alice.as_str().to_uppercase());
    let answer = h.post(&body).await;
    let subscription = assert_subscribed(&answer, "sent");

    let link = h.store.link(&alice).await.unwrap().expect("linked");
    assert_eq!(link.state, LinkState::Linked);
    assert_eq!(link.subscription_id, subscription);
    assert_eq!(link.registration, "r-7f3a");
    assert_eq!(link.generation, 3);
    assert_eq!(link.callback, "https://push.example.net/n/r-7f3a");
    assert_eq!(
        link.device.as_ref().and_then(|d| d.pin.as_deref()),
        Some("2A3B4C5D")
    );
    assert_eq!(link.activation, ActivationState::Sent);

    let mails = h.activation_mails(&alice).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, ACTIVATION_SUBJECT);
    // Kept mail also lands in the account's INBOX, as a message a mail client would show.
    let inbox = pushmail_core::folder::FolderName::parse("INBOX").unwrap();
    let delivered = h.store.messages(&alice, &inbox, 0, 10).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].envelope.subject.as_deref(),
        Some(ACTIVATION_SUBJECT)
    );
    assert_eq!(
        delivered[0].envelope.from.as_deref(),
        Some("push@pushmail.test")
    );
    assert_eq!(delivered[0].envelope.to, vec![alice.to_string()]);
    let raw = h
        .store
        .message_body(&alice, &inbox, delivered[0].uid)
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&raw).contains(&subscription),
        "the body names the subscription"
    );
    let text = mails[0].body.as_str();
    assert!(text.contains(alice.as_str()), "{text}");
    assert!(
        text.contains("Bold 9700") && text.contains("2A3B4C5D"),
        "{text}"
    );
    assert!(
        text.contains(&link.linked_at.format("%Y-%m-%dT%H:%M:%S").to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn an_exact_replay_answers_the_same_and_sends_no_second_mail() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let first = h.post(&h.subscribe_body(&alice, "r-1", 3)).await;
    assert_subscribed(&first, "sent");
    // A retry is signed afresh, as the spec demands; device details may differ in a retry.
    let mut retry = h.subscribe_body(&alice, "r-1", 3);
    retry["device"] = json!({"model": "Bold 9700"});
    let second = h.post(&retry).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, first.body);
    assert_eq!(h.activation_mails(&alice).await.len(), 1);
}

#[tokio::test]
async fn a_higher_generation_supersedes_and_a_lower_one_is_stale() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let first = assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-1", 3)).await, "sent");
    let second = assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 4)).await, "sent");
    assert_ne!(first, second);
    let link = h.store.link(&alice).await.unwrap().unwrap();
    assert_eq!((link.registration.as_str(), link.generation), ("r-2", 4));
    assert_eq!(link.callback, "https://push.example.net/n/r-2");
    assert_eq!(link.subscription_id, second);
    assert_eq!(h.activation_mails(&alice).await.len(), 2);

    let stale = h.post(&h.subscribe_body(&alice, "r-3", 2)).await;
    assert_error(&stale, 409, "stale_generation");
    let same_generation_other_registration = h.post(&h.subscribe_body(&alice, "r-4", 4)).await;
    assert_error(&same_generation_other_registration, 409, "stale_generation");
    assert_eq!(h.store.link(&alice).await.unwrap().unwrap(), link);
    assert_eq!(h.activation_mails(&alice).await.len(), 2);
}

#[tokio::test]
async fn unsubscribe_unlinks_once_then_answers_not_subscribed() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let never = h.post(&h.unsubscribe_body(&alice, "r-1", 3)).await;
    assert_eq!(
        (never.status, never.body.clone()),
        (200, json!({"status": "not_subscribed"}))
    );

    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-1", 3)).await, "sent");
    let first = h.post(&h.unsubscribe_body(&alice, "r-1", 3)).await;
    assert_eq!(
        (first.status, first.body.clone()),
        (200, json!({"status": "unsubscribed"}))
    );
    let link = h.store.link(&alice).await.unwrap().unwrap();
    assert_eq!(link.state, LinkState::Unlinked);
    assert!(link.unlinked_at.is_some());

    let twice = h.post(&h.unsubscribe_body(&alice, "r-1", 3)).await;
    assert_eq!(
        (twice.status, twice.body.clone()),
        (200, json!({"status": "not_subscribed"}))
    );

    // A late copy of the SUBSCRIBE that was just unlinked must not bring it back.
    let late = h.post(&h.subscribe_body(&alice, "r-1", 3)).await;
    assert_error(&late, 409, "stale_generation");
    assert_eq!(
        h.store.link(&alice).await.unwrap().unwrap().state,
        LinkState::Unlinked
    );
    // Re-adding the account on the device (a new generation) links it again.
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 4)).await, "sent");
}

#[tokio::test]
async fn a_late_unsubscribe_leaves_the_newer_link_in_place() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-1", 3)).await, "sent");
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 5)).await, "sent");
    let current = h.store.link(&alice).await.unwrap().unwrap();

    for (registration, generation) in [("r-1", 3), ("r-2", 4), ("r-9", 4), ("r-9", 5)] {
        let late = h
            .post(&h.unsubscribe_body(&alice, registration, generation))
            .await;
        assert_eq!(
            (late.status, late.body.clone()),
            (200, json!({"status": "ignored_stale"})),
            "{registration} {generation}"
        );
        assert_eq!(h.store.link(&alice).await.unwrap().unwrap(), current);
    }
    // A newer UNSUBSCRIBE (the device changed, then deleted the account) does unlink.
    let newer = h.post(&h.unsubscribe_body(&alice, "r-2", 6)).await;
    assert_eq!(newer.body, json!({"status": "unsubscribed"}));
    // ...and raises the bar: the SUBSCRIBE of generation 5 or 6 cannot come back.
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-2", 6)).await,
        409,
        "stale_generation",
    );
}

#[tokio::test]
async fn unsubscribe_works_even_when_integration_is_switched_off() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-1", 1)).await, "sent");
    h.set_domain_push(false).await;
    let answer = h.post(&h.unsubscribe_body(&alice, "r-1", 1)).await;
    assert_eq!(answer.body, json!({"status": "unsubscribed"}));
}

#[tokio::test]
async fn twenty_racing_subscribes_leave_one_link_with_the_highest_generation() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bodies: Vec<Value> = (0..20u64)
        .map(|i| h.subscribe_body(&alice, &format!("r-{i}"), (i * 7) % 10 + 1))
        .collect();
    // At most five checks of one account run at once; the others are told to come back in a
    // second (429 with Retry-After), and do, as a push service following the spec would.
    let answers = futures::future::join_all(bodies.iter().map(|b| h.post_retrying_busy(b))).await;
    let highest = 10;
    let mut winners = Vec::new();
    for (body, answer) in bodies.iter().zip(&answers) {
        match answer.status {
            200 => winners.push((
                body,
                answer.body["subscription"].as_str().unwrap().to_owned(),
            )),
            409 => assert_eq!(answer.body["error"], "stale_generation"),
            other => panic!("unexpected answer {other}: {:?}", answer.body),
        }
    }
    let link = h.store.link(&alice).await.unwrap().expect("one link");
    assert!(link.is_linked());
    assert_eq!(link.generation, highest);
    // Of the two requests with the highest generation, exactly one won; its answer names the link.
    let top: Vec<_> = winners
        .iter()
        .filter(|(b, _)| b["generation"] == highest)
        .collect();
    assert_eq!(
        top.len(),
        1,
        "equal generations: the first recorded wins, the other is refused"
    );
    assert_eq!(top[0].1, link.subscription_id);
    assert_eq!(top[0].0["registration"], link.registration.as_str());
}

#[tokio::test]
async fn ses_refusing_leaves_activation_pending_and_it_goes_out_once_later() {
    let h = Harness::start_with(Setup {
        mail_accepted: false,
        ..Setup::default()
    })
    .await;
    let alice = h.account("alice").await;
    let subscription = assert_subscribed(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        "pending",
    );
    let link = h.store.link(&alice).await.unwrap().unwrap();
    assert!(link.is_linked());
    assert_eq!(link.activation, ActivationState::Pending);
    assert!(h.activation_mails(&alice).await.is_empty());
    // A replay while SES is still refusing stays pending and sends nothing.
    assert_subscribed(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        "pending",
    );

    h.accept_mail();
    // Two sweepers at once, after the backoff has passed, plus a later sweep: one mail.
    let later = Utc::now() + Duration::hours(2);
    let (a, b) = tokio::join!(
        h.service.deliver_due_activations(later),
        h.service.deliver_due_activations(later)
    );
    assert_eq!(a.unwrap().sent + b.unwrap().sent, 1);
    assert_eq!(
        h.service.deliver_due_activations(later).await.unwrap().sent,
        0
    );
    assert_eq!(h.activation_mails(&alice).await.len(), 1);
    let link = h.store.link(&alice).await.unwrap().unwrap();
    assert_eq!(link.activation, ActivationState::Sent);
    assert_eq!(link.subscription_id, subscription);
    let replay = h.post(&h.subscribe_body(&alice, "r-1", 1)).await;
    assert_subscribed(&replay, "sent");
    assert_eq!(h.activation_mails(&alice).await.len(), 1);
}

#[tokio::test]
async fn a_superseded_subscription_never_gets_its_pending_mail() {
    let h = Harness::start_with(Setup {
        mail_accepted: false,
        ..Setup::default()
    })
    .await;
    let alice = h.account("alice").await;
    assert_subscribed(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        "pending",
    );
    h.accept_mail();
    let newer = assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 2)).await, "sent");
    let report = h
        .service
        .deliver_due_activations(Utc::now() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!((report.sent, report.discarded), (0, 1));
    let mails = h.activation_mails(&alice).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].body.as_str().contains(&newer));
}

#[tokio::test]
async fn the_password_is_never_stored_or_echoed() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let answer = h.post(&h.subscribe_body(&alice, "r-1", 1)).await;
    assert!(!answer.body.to_string().contains(PASSWORD));
    let account = h.store.account(&alice).await.unwrap().unwrap();
    assert!(account.password_hash.starts_with("$argon2id$"));
    assert!(!format!("{account:?}").contains(&account.password_hash));
}
