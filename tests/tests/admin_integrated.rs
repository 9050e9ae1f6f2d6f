//! The admin API's integrated accounts against a real DynamoDB/SES endpoint: paging, removal
//! (the push service told, or not reachable), activation mail sent again, pushed folders.

use chrono::{Duration, Utc};
use pushmail_core::protocol::sign;
use pushmail_core::types::{Account, ActivationJob, ActivationState, Address, Link, LinkState};
use pushmail_store::LinkInsert;
use pushmail_tests::admin::other_domain;
use pushmail_tests::{CallbackSink, Harness, PASSWORD, assert_error, assert_status};
use serde_json::{Value, json};

/// Links inserted straight through the store, one millisecond apart, newest last.
async fn insert_links(h: &Harness, count: usize) -> Vec<Address> {
    let start = Utc::now() - Duration::hours(1);
    let mut addresses = Vec::new();
    for i in 0..count {
        let address = Address::parse(&format!("user{i:03}@{}", h.domain)).unwrap();
        let at = start + Duration::milliseconds(i as i64);
        let link = Link {
            address: address.clone(),
            subscription_id: format!("sub_{i}"),
            registration: format!("r-{i}"),
            generation: 1,
            callback: "https://push.example.net/n".into(),
            device: None,
            state: LinkState::Linked,
            activation: if i % 3 == 0 {
                ActivationState::Pending
            } else {
                ActivationState::Sent
            },
            linked_at: at,
            unlinked_at: None,
        };
        let job = ActivationJob {
            subscription_id: link.subscription_id.clone(),
            address: address.clone(),
            device: None,
            linked_at: at,
            attempts: 0,
            not_before: at + Duration::days(1),
        };
        let owner = Account {
            address: address.clone(),
            password_hash: "not-a-password-hash".into(),
            enabled: true,
            display_name: None,
            pushed_folders: vec![],
            created_at: at,
            revision: 0,
            quota_bytes: None,
            sender_aliases: Vec::new(),
            filing_rules: Vec::new(),
        };
        h.store.put_account(&owner).await.unwrap();
        assert_eq!(
            h.store.insert_link(&link, &job, &owner, at).await.unwrap(),
            LinkInsert::Inserted
        );
        addresses.push(address);
    }
    addresses
}

async fn collect_pages(h: &Harness, path: &str) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit=100&cursor={c}"),
            None => format!("{path}{separator}limit=100"),
        };
        let page = h.admin_as_server("GET", &url, None).await;
        assert_status(&page, 200);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 100);
        seen.extend(
            items
                .iter()
                .map(|i| i["address"].as_str().unwrap().to_owned()),
        );
        match page.body["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (seen, pages),
        }
    }
}

#[tokio::test]
async fn integrated_accounts_page_through_250_each_exactly_once_newest_first() {
    let h = Harness::start().await;
    let addresses = insert_links(&h, 250).await;
    let expected: Vec<String> = addresses.iter().rev().map(|a| a.to_string()).collect();

    let (seen, pages) = collect_pages(
        &h,
        &format!("/admin/domains/{}/integrated-accounts", h.domain),
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);
    // Each with how its new-mail notices are going, as the console's list shows them.
    let first = h
        .admin_as_server(
            "GET",
            &format!("/admin/domains/{}/integrated-accounts?limit=3", h.domain),
            None,
        )
        .await;
    for item in first.body["items"].as_array().unwrap() {
        assert_eq!(item["notices"]["pending"], 0, "{item}");
        assert!(item["notices"]["last_failure"].is_null(), "{item}");
    }

    let (pending, _) = collect_pages(
        &h,
        &format!(
            "/admin/domains/{}/integrated-accounts?activation=pending",
            h.domain
        ),
    )
    .await;
    let expected_pending: Vec<String> = addresses
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| i % 3 == 0)
        .map(|(_, a)| a.to_string())
        .collect();
    assert_eq!(pending, expected_pending);

    // Across domains: this test's 250 appear in the same order among everyone else's.
    let (all, _) = collect_pages(&h, "/admin/integrated-accounts").await;
    let mine: Vec<String> = all
        .into_iter()
        .filter(|a| a.ends_with(h.domain.as_str()))
        .collect();
    assert_eq!(mine, expected);

    // A cursor from one domain's listing is refused for another's.
    let page = h
        .admin_as_server(
            "GET",
            &format!("/admin/domains/{}/integrated-accounts?limit=1", h.domain),
            None,
        )
        .await;
    let cursor = page.body["cursor"].as_str().unwrap();
    let other = other_domain(&h).await;
    let answer = h
        .admin_as_server(
            "GET",
            &format!("/admin/domains/{other}/integrated-accounts?cursor={cursor}"),
            None,
        )
        .await;
    assert_error(&answer, 400, "invalid_request");
}

#[tokio::test]
async fn removing_an_integrated_account_unlinks_it_for_the_subscribe_url() {
    let h = Harness::start().await;
    let sink = CallbackSink::start(200).await;
    let alice = h.account("alice").await;
    let mut body = h.subscribe_body(&alice, "r-1", 4);
    body["callback"] = json!(format!("{}r-1", sink.url));
    assert_status(&h.post(&body).await, 200);
    // A newer secret exists: the notice must be signed with it.
    let newer = h
        .admin_as_server(
            "POST",
            &format!("/admin/domains/{}/secrets", h.domain),
            None,
        )
        .await;
    let newer = newer.body["value"].as_str().unwrap().to_owned();

    let path = format!("/admin/accounts/{alice}/integration");
    let shown = h.admin_as_server("GET", &path, None).await;
    assert_eq!(shown.body["registration"], "r-1");
    assert_eq!(shown.body["generation"], 4);
    assert_eq!(shown.body["callback_host"], "127.0.0.1");
    assert_eq!(shown.body["device"]["model"], "Bold 9700");
    assert_eq!(shown.body["activation"], "sent");

    let removed = h.admin_as_server("DELETE", &path, None).await;
    assert_eq!(
        removed.body,
        json!({"status": "unlinked", "unlinked_notice": "attempted"})
    );
    let notices = sink.received();
    assert_eq!(notices.len(), 1);
    let notice: Value = serde_json::from_slice(&notices[0].body).unwrap();
    assert_eq!(notice["type"], "UNLINKED");
    assert_eq!(notice["email"], alice.as_str());
    assert_eq!(notice["registration"], "r-1");
    let timestamp: i64 = notices[0].timestamp.parse().unwrap();
    assert_eq!(
        notices[0].signature,
        sign(newer.as_bytes(), timestamp, &notices[0].body)
    );

    assert_error(
        &h.admin_as_server("GET", &path, None).await,
        404,
        "not_found",
    );
    assert_error(
        &h.admin_as_server("DELETE", &path, None).await,
        404,
        "not_found",
    );
    assert_eq!(
        sink.received().len(),
        1,
        "a second removal sent a second notice"
    );
    let listed = h
        .admin_as_server(
            "GET",
            &format!("/admin/domains/{}/integrated-accounts", h.domain),
            None,
        )
        .await;
    assert_eq!(listed.body["items"], json!([]));
    // The Subscribe URL sees it unlinked: a late UNSUBSCRIBE is not_subscribed, the old
    // SUBSCRIBE cannot come back, a newer one links again.
    assert_eq!(
        h.post(&h.unsubscribe_body(&alice, "r-1", 4)).await.body,
        json!({"status": "not_subscribed"})
    );
    assert_eq!(h.post(&body).await.body["error"], "stale_generation");
    body["generation"] = json!(5);
    assert_status(&h.post(&body).await, 200);
}

#[tokio::test]
async fn an_unreachable_push_service_does_not_stop_a_removal() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut body = h.subscribe_body(&alice, "r-1", 1);
    body["callback"] = json!("http://127.0.0.1:9/n/r-1");
    assert_status(&h.post(&body).await, 200);
    let removed = h
        .admin_as_server(
            "DELETE",
            &format!("/admin/accounts/{alice}/integration"),
            None,
        )
        .await;
    assert_eq!(
        removed.body,
        json!({"status": "unlinked", "unlinked_notice": "attempted"})
    );
    assert!(!h.store.link(&alice).await.unwrap().unwrap().is_linked());
}

#[tokio::test]
async fn resend_activation_sends_another_mail() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    assert_status(&h.post(&h.subscribe_body(&alice, "r-1", 1)).await, 200);
    let path = format!("/admin/accounts/{alice}/integration/resend-activation");
    assert_eq!(
        h.admin_as_server("POST", &path, None).await.body,
        json!({"activation": "sent"})
    );
    assert_eq!(h.activation_mails(&alice).await.len(), 2);
    let nobody = h.account("nobody").await;
    assert_error(
        &h.admin_as_server(
            "POST",
            &format!("/admin/accounts/{nobody}/integration/resend-activation"),
            None,
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn pushed_folders_by_admin_and_by_the_user_themself() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let path = format!("/admin/accounts/{alice}/pushed-folders");
    let set = h
        .admin_as_server(
            "PUT",
            &path,
            Some(json!({"folders": ["Work", "Lists/Rust", "Work"]})),
        )
        .await;
    assert_eq!(set.body, json!({"folders": ["Work", "Lists/Rust"]}));
    assert_eq!(h.admin_as_server("GET", &path, None).await.body, set.body);
    assert_error(
        &h.admin_as_server("PUT", &path, Some(json!({"folders": ["INBOX"]})))
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        &h.admin_as_server("PUT", &path, Some(json!({"folders": "Work"})))
            .await,
        400,
        "invalid_request",
    );
    assert_eq!(
        h.store
            .account(&alice)
            .await
            .unwrap()
            .unwrap()
            .pushed_folders,
        vec!["Work", "Lists/Rust"]
    );

    // The user, with their own address and password.
    let own = h
        .self_call(
            "PUT",
            alice.as_str(),
            PASSWORD,
            Some(json!({"folders": ["Family"]})),
        )
        .await;
    assert_eq!(own.body, json!({"folders": ["Family"]}));
    assert_eq!(
        h.self_call("GET", alice.as_str(), PASSWORD, None)
            .await
            .body,
        own.body
    );
    // A wrong password and an unknown account get one answer, and change nothing.
    let wrong = h
        .self_call(
            "PUT",
            alice.as_str(),
            "not it",
            Some(json!({"folders": ["X"]})),
        )
        .await;
    let unknown = h
        .self_call(
            "PUT",
            &format!("ghost@{}", h.domain),
            PASSWORD,
            Some(json!({"folders": ["X"]})),
        )
        .await;
    assert_error(&wrong, 401, "unauthorized");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(
        h.store
            .account(&alice)
            .await
            .unwrap()
            .unwrap()
            .pushed_folders,
        vec!["Family"]
    );
    // Bob's credentials change Bob's folders only.
    assert_status(
        &h.self_call(
            "PUT",
            bob.as_str(),
            PASSWORD,
            Some(json!({"folders": ["Bob's"]})),
        )
        .await,
        200,
    );
    assert_eq!(
        h.store
            .account(&alice)
            .await
            .unwrap()
            .unwrap()
            .pushed_folders,
        vec!["Family"]
    );
    assert_eq!(
        h.store.account(&bob).await.unwrap().unwrap().pushed_folders,
        vec!["Bob's"]
    );
    // No credentials at all.
    let anonymous = h
        .admin_call("GET", "/self/pushed-folders", None, None)
        .await;
    assert_error(&anonymous, 401, "unauthorized");

    let audit = h
        .admin_as_server("GET", &format!("/admin/domains/{}/audit", h.domain), None)
        .await;
    let actors: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        actors.contains(&format!("self:{alice}").as_str()),
        "{actors:?}"
    );
}
