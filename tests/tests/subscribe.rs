//! The Subscribe URL against a real DynamoDB/SES endpoint (spec §1–3). Every test asserts the
//! answer and what the store holds afterwards.

use chrono::{Duration, Utc};
use pushmail_core::protocol::sign;
use pushmail_core::types::{ActivationState, Address, LinkState, ServerSettings};
use pushmail_push::mailer::ACTIVATION_SUBJECT;
use pushmail_tests::{Answer, Harness, PASSWORD, Setup};
use serde_json::{Value, json};

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "answer: {:?}", answer.body);
    assert_eq!(answer.body["error"], code, "answer: {:?}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "no detail: {:?}",
        answer.body
    );
}

fn assert_subscribed(answer: &Answer, activation: &str) -> String {
    assert_eq!(answer.status, 200, "answer: {:?}", answer.body);
    assert_eq!(answer.body["status"], "subscribed");
    assert_eq!(
        answer.body["activation"], activation,
        "answer: {:?}",
        answer.body
    );
    answer.body["subscription"]
        .as_str()
        .expect("subscription id")
        .to_owned()
}

/// A refused request left nothing behind: no link, no mail, and a later valid SUBSCRIBE is new.
async fn assert_no_trace(h: &Harness, address: &Address) {
    assert_eq!(
        h.store.link(address).await.unwrap(),
        None,
        "a refused request left a link"
    );
    assert!(
        h.activation_mails(address).await.is_empty(),
        "a refused request sent mail"
    );
    let answer = h.post(&h.subscribe_body(address, "r-after", 1)).await;
    assert_subscribed(&answer, "sent");
    assert_eq!(h.activation_mails(address).await.len(), 1);
}

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
async fn signature_refusals_leave_no_trace() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let body = serde_json::to_vec(&h.subscribe_body(&alice, "r-1", 1)).unwrap();
    let now = Utc::now().timestamp();
    let good = sign(h.secret.as_bytes(), now, &body);
    let ts = now.to_string();
    let cases: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("missing timestamp", None, Some(good.clone())),
        ("missing signature", Some(ts.clone()), None),
        ("not hex", Some(ts.clone()), Some("v1=zz".into())),
        (
            "wrong version",
            Some(ts.clone()),
            Some(good.replace("v1=", "v2=")),
        ),
        (
            "upper-case hex",
            Some(ts.clone()),
            Some(format!("v1={}", good[3..].to_uppercase())),
        ),
        (
            "timestamp not decimal",
            Some("0x10".into()),
            Some(good.clone()),
        ),
        (
            "wrong secret",
            Some(ts.clone()),
            Some(sign(b"not the secret", now, &body)),
        ),
        (
            "other timestamp",
            Some((now + 1).to_string()),
            Some(good.clone()),
        ),
        (
            "301 s old",
            Some((now - 301).to_string()),
            Some(sign(h.secret.as_bytes(), now - 301, &body)),
        ),
        // 302: the server reads its clock a moment after this test did, at most a second on.
        (
            "301 s ahead",
            Some((now + 302).to_string()),
            Some(sign(h.secret.as_bytes(), now + 302, &body)),
        ),
    ];
    for (case, timestamp, signature) in cases {
        let answer = h
            .post_raw(
                body.clone(),
                "application/json",
                timestamp.as_deref(),
                signature.as_deref(),
            )
            .await;
        assert_eq!(answer.status, 401, "{case}: {:?}", answer.body);
        assert_eq!(answer.body["error"], "bad_signature", "{case}");
    }
    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn a_replayed_signature_is_refused() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let body = serde_json::to_vec(&h.subscribe_body(&alice, "r-1", 1)).unwrap();
    let now = Utc::now().timestamp();
    let signature = sign(h.secret.as_bytes(), now, &body);
    let first = h
        .post_raw(
            body.clone(),
            "application/json",
            Some(&now.to_string()),
            Some(&signature),
        )
        .await;
    assert_subscribed(&first, "sent");
    let again = h
        .post_raw(
            body.clone(),
            "application/json",
            Some(&now.to_string()),
            Some(&signature),
        )
        .await;
    assert_error(&again, 401, "bad_signature");
    // Even a replayed UNSUBSCRIBE changes nothing.
    let unsubscribe = serde_json::to_vec(&h.unsubscribe_body(&alice, "r-1", 1)).unwrap();
    let signature = sign(h.secret.as_bytes(), now, &unsubscribe);
    let ts = now.to_string();
    assert_eq!(
        h.post_raw(
            unsubscribe.clone(),
            "application/json",
            Some(&ts),
            Some(&signature)
        )
        .await
        .body,
        json!({"status": "unsubscribed"})
    );
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 2)).await, "sent");
    let replayed = h
        .post_raw(unsubscribe, "application/json", Some(&ts), Some(&signature))
        .await;
    assert_error(&replayed, 401, "bad_signature");
    assert!(h.store.link(&alice).await.unwrap().unwrap().is_linked());
}

#[tokio::test]
async fn either_of_two_live_secrets_is_accepted() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    h.add_secret("the-newer-secret", Utc::now() + Duration::seconds(1))
        .await;
    for (generation, secret) in [(1, h.secret.clone()), (2, "the-newer-secret".to_owned())] {
        let body = serde_json::to_vec(&h.subscribe_body(&alice, "r-1", generation)).unwrap();
        let now = Utc::now().timestamp();
        let signature = sign(secret.as_bytes(), now, &body);
        let answer = h
            .post_raw(
                body,
                "application/json",
                Some(&now.to_string()),
                Some(&signature),
            )
            .await;
        assert_subscribed(&answer, "sent");
    }
    assert_eq!(h.store.link(&alice).await.unwrap().unwrap().generation, 2);
}

#[tokio::test]
async fn an_unknown_domain_gets_the_same_answer_as_a_wrong_signature() {
    let h = Harness::start().await;
    let stranger = Address::parse("bob@unknown-domain.example").unwrap();
    let answer = h.post(&h.subscribe_body(&stranger, "r-1", 1)).await;
    assert_error(&answer, 401, "bad_signature");
    assert_eq!(h.store.link(&stranger).await.unwrap(), None);
}

#[tokio::test]
async fn wrong_password_and_unknown_account_get_one_answer() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut wrong = h.subscribe_body(&alice, "r-1", 1);
    wrong["password"] = json!("not the password");
    let wrong = h.post(&wrong).await;
    assert_error(&wrong, 401, "bad_credentials");
    let nobody = Address::parse(&format!("nobody@{}", h.domain)).unwrap();
    let unknown = h.post(&h.subscribe_body(&nobody, "r-1", 1)).await;
    assert_error(&unknown, 401, "bad_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(h.store.link(&nobody).await.unwrap(), None);
    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn the_sixth_bad_password_in_a_row_is_rate_limited() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut wrong = h.subscribe_body(&alice, "r-1", 1);
    wrong["password"] = json!("guess");
    for attempt in 1..=5 {
        let answer = h.post(&wrong).await;
        assert_error(&answer, 401, "bad_credentials");
        assert_eq!(answer.retry_after, None, "attempt {attempt}");
    }
    let sixth = h.post(&wrong).await;
    assert_error(&sixth, 429, "rate_limited");
    let wait: u64 = sixth
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    // Locked out even with the right password, and nothing was linked.
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        429,
        "rate_limited",
    );
    assert_eq!(h.store.link(&alice).await.unwrap(), None);
    assert!(h.activation_mails(&alice).await.is_empty());
}

#[tokio::test]
async fn a_good_password_resets_the_failure_count() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut wrong = h.subscribe_body(&alice, "r-1", 1);
    wrong["password"] = json!("guess");
    for _ in 0..4 {
        assert_error(&h.post(&wrong).await, 401, "bad_credentials");
    }
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-1", 1)).await, "sent");
    for _ in 0..5 {
        assert_error(&h.post(&wrong).await, 401, "bad_credentials");
    }
    assert_error(&h.post(&wrong).await, 429, "rate_limited");
}

#[tokio::test]
async fn one_source_guessing_many_accounts_is_rate_limited() {
    let h = Harness::start().await;
    for n in 0..20 {
        let victim = h.account(&format!("user{n}")).await;
        let mut wrong = h.subscribe_body(&victim, "r-1", 1);
        wrong["password"] = json!("guess");
        assert_error(&h.post(&wrong).await, 401, "bad_credentials");
    }
    let fresh = h.account("fresh").await;
    let answer = h.post(&h.subscribe_body(&fresh, "r-1", 1)).await;
    assert_error(&answer, 429, "rate_limited");
    assert!(answer.retry_after.is_some());
}

#[tokio::test]
async fn switches_off_refuse_with_403_and_leave_no_trace() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;

    h.store
        .put_server_settings(&ServerSettings {
            push_enabled: false,
        })
        .await
        .unwrap();
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        403,
        "integration_disabled",
    );
    h.store
        .put_server_settings(&ServerSettings { push_enabled: true })
        .await
        .unwrap();

    h.set_domain_push(false).await;
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        403,
        "integration_disabled",
    );
    h.set_domain_push(true).await;

    let mut account = h.store.account(&alice).await.unwrap().unwrap();
    account.enabled = false;
    h.store.put_account(&account).await.unwrap();
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        403,
        "integration_disabled",
    );
    account.enabled = true;
    h.store.put_account(&account).await.unwrap();

    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn without_a_live_imap_listener_subscribe_answers_503() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // The harness's heartbeat is fresh; stop refreshing it and age it past 60 s.
    h.imap_keepalive(false);
    h.heartbeat(Utc::now() - Duration::seconds(61)).await;
    assert_error(
        &h.post(&h.subscribe_body(&alice, "r-1", 1)).await,
        503,
        "imap_unavailable",
    );
    h.heartbeat(Utc::now()).await;
    h.imap_keepalive(true);
    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn malformed_requests_are_refused_with_the_field_named() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let base = h.subscribe_body(&alice, "r-1", 1);
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value;
        }
        body
    };
    for (body, field) in [
        (with("generation", json!("1")), "generation"),
        (with("generation", json!(-1)), "generation"),
        (with("registration", Value::Null), "registration"),
        (with("registration", json!("has space")), "registration"),
        (
            with("callback", json!("http://push.example.net/n")),
            "callback",
        ),
        (with("email", json!("not-an-address")), "email"),
        (with("type", json!("RESUBSCRIBE")), "type"),
        (
            with("device", json!({"model": "x".repeat(65)})),
            "device.model",
        ),
    ] {
        let answer = h.post(&body).await;
        assert_error(&answer, 400, "invalid_request");
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{field}`")), "{field}: {detail}");
    }
    let now = Utc::now().timestamp();
    let garbage = b"{\"type\": \"SUBSCRIBE\",".to_vec();
    let signature = sign(h.secret.as_bytes(), now, &garbage);
    let answer = h
        .post_raw(
            garbage,
            "application/json",
            Some(&now.to_string()),
            Some(&signature),
        )
        .await;
    assert_error(&answer, 400, "invalid_request");
    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn oversize_and_non_json_bodies_are_refused() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut big = h.subscribe_body(&alice, "r-1", 1);
    big["padding"] = json!("x".repeat(16 * 1024));
    let bytes = serde_json::to_vec(&big).unwrap();
    let now = Utc::now().timestamp();
    let signature = sign(h.secret.as_bytes(), now, &bytes);
    let answer = h
        .post_raw(
            bytes,
            "application/json",
            Some(&now.to_string()),
            Some(&signature),
        )
        .await;
    assert_error(&answer, 413, "too_large");

    let body = serde_json::to_vec(&h.subscribe_body(&alice, "r-1", 1)).unwrap();
    let signature = sign(h.secret.as_bytes(), now, &body);
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let answer = h
            .post_raw(
                body.clone(),
                content_type,
                Some(&now.to_string()),
                Some(&signature),
            )
            .await;
        assert_error(&answer, 415, "unsupported_media_type");
    }
    assert_no_trace(&h, &alice).await;
}

#[tokio::test]
async fn a_body_of_exactly_16_kib_is_accepted() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut body = h.subscribe_body(&alice, "r-1", 1);
    body["padding"] = json!("");
    let short = serde_json::to_vec(&body).unwrap().len();
    body["padding"] = json!("x".repeat(16 * 1024 - short));
    assert_eq!(serde_json::to_vec(&body).unwrap().len(), 16 * 1024);
    assert_subscribed(&h.post(&body).await, "sent");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused() {
    let h = Harness::start().await;
    let answer = h.get("/nowhere").await;
    assert_error(&answer, 404, "invalid_request");
    let wrong_method = h.get("/subscribe").await;
    assert_error(&wrong_method, 405, "invalid_request");
    assert_eq!(wrong_method.header("allow"), Some("POST"));
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
