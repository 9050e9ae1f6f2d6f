//! The Subscribe URL's refusals against a real DynamoDB/SES endpoint (spec §1–3): signatures,
//! passwords and their rate limits, switches, the IMAP prerequisite, malformed and oversize
//! requests. Each leaves no trace in the store.

use chrono::{Duration, Utc};
use pushmail_core::protocol::sign;
use pushmail_core::types::{Address, ServerSettings};
use pushmail_tests::subscribe::{assert_no_trace, assert_subscribed};
use pushmail_tests::{Harness, assert_error};
use serde_json::{Value, json};

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
    let first = h
        .post_bytes(body.clone(), "application/json", now, &h.secret)
        .await;
    assert_subscribed(&first, "sent");
    let again = h
        .post_bytes(body.clone(), "application/json", now, &h.secret)
        .await;
    assert_error(&again, 401, "bad_signature");
    // Even a replayed UNSUBSCRIBE changes nothing.
    let unsubscribe = serde_json::to_vec(&h.unsubscribe_body(&alice, "r-1", 1)).unwrap();
    assert_eq!(
        h.post_bytes(unsubscribe.clone(), "application/json", now, &h.secret)
            .await
            .body,
        json!({"status": "unsubscribed"})
    );
    assert_subscribed(&h.post(&h.subscribe_body(&alice, "r-2", 2)).await, "sent");
    let replayed = h
        .post_bytes(unsubscribe, "application/json", now, &h.secret)
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
        let answer = h.post_bytes(body, "application/json", now, &secret).await;
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
async fn one_source_guessing_many_accounts_is_slowed_but_a_right_password_still_gets_in() {
    use pushmail_store::credentials::CredentialLimits;
    let h = Harness::start().await;
    let limits = CredentialLimits::get();
    let guesses = limits.source_free_failures + 2;
    for n in 0..guesses {
        let victim = h.account(&format!("user{n}")).await;
        let mut wrong = h.subscribe_body(&victim, "r-1", 1);
        wrong["password"] = json!("guess");
        assert_error(&h.post(&wrong).await, 401, "bad_credentials");
    }
    // The source's next check waits (a push service in front of many users must not be locked
    // out by one of them), and a right password then gets in.
    let fresh = h.account("fresh").await;
    let started = std::time::Instant::now();
    let answer = h.post(&h.subscribe_body(&fresh, "r-1", 1)).await;
    assert_subscribed(&answer, "sent");
    assert!(
        started.elapsed() >= limits.source_delay(guesses),
        "{:?}",
        started.elapsed()
    );
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
    let answer = h
        .post_bytes(garbage, "application/json", now, &h.secret)
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
    let answer = h
        .post_bytes(bytes, "application/json", now, &h.secret)
        .await;
    assert_error(&answer, 413, "too_large");

    let body = serde_json::to_vec(&h.subscribe_body(&alice, "r-1", 1)).unwrap();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let answer = h
            .post_bytes(body.clone(), content_type, now, &h.secret)
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
