//! The admin API against a real DynamoDB/SES endpoint: every route's success and refusals, with
//! the stored state checked after each refusal.

use chrono::{Duration, Utc};
use pushmail_core::protocol::sign;
use pushmail_core::types::{Account, ActivationJob, ActivationState, Address, Link, LinkState};
use pushmail_store::LinkInsert;
use pushmail_tests::{Answer, CallbackSink, Harness, PASSWORD};
use serde_json::{Value, json};

fn assert_status(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "answer: {:?}", answer.body);
}

fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_status(answer, status);
    assert_eq!(answer.body["error"], code, "answer: {:?}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

/// A second domain with push on, for scope tests.
async fn other_domain(h: &Harness) -> String {
    let name = format!(
        "other-{}.example",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let created = h
        .admin_as_server(
            "POST",
            "/admin/domains",
            Some(json!({"name": name, "push_enabled": true})),
        )
        .await;
    assert_status(&created, 201);
    name
}

async fn domain_token(h: &Harness, domain: &str) -> String {
    let answer = h
        .admin_as_server(
            "POST",
            "/admin/tokens",
            Some(json!({"scope": "domain", "domain": domain, "label": "ops"})),
        )
        .await;
    assert_status(&answer, 201);
    answer.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let h = Harness::start().await;
    let path = "/admin/domains";
    let missing = h.admin_call("GET", path, None, None).await;
    assert_error(&missing, 401, "unauthorized");
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"pushmail admin\"")
    );
    let own = h
        .self_call("GET", "nobody@x.example", "wrong-password", None)
        .await;
    assert_error(&own, 401, "unauthorized");
    assert!(
        own.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic realm=")),
        "{:?}",
        own.headers
    );
    for bad in [
        "nonsense",
        "pma_0123456789abcdef.00",
        &format!("{}0", h.server_token),
    ] {
        assert_error(
            &h.admin_call("GET", path, Some(bad), None).await,
            401,
            "unauthorized",
        );
    }
    // The token may also come in X-Admin-Token (on AWS, Authorization carries SigV4).
    let via_header = reqwest::Client::new()
        .get(format!("{}{path}", h.admin_url))
        .header("x-admin-token", &h.server_token)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/execute-api/aws4_request",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(via_header.status().as_u16(), 200);
    // Right id, wrong secret.
    let (id, _) = h.server_token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(64));
    assert_error(
        &h.admin_call("GET", path, Some(&forged), None).await,
        401,
        "unauthorized",
    );

    let created = h
        .admin_as_server(
            "POST",
            "/admin/tokens",
            Some(json!({"scope": "server", "label": "ci"})),
        )
        .await;
    assert_status(&created, 201);
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert_status(&h.admin_call("GET", path, Some(&token), None).await, 200);
    let listed = h.admin_as_server("GET", "/admin/tokens", None).await;
    assert!(
        !listed
            .body
            .to_string()
            .contains(token.split_once('.').unwrap().1),
        "a token secret was listed"
    );
    let id = created.body["id"].as_str().unwrap();
    assert_status(
        &h.admin_as_server("DELETE", &format!("/admin/tokens/{id}"), None)
            .await,
        204,
    );
    assert_error(
        &h.admin_call("GET", path, Some(&token), None).await,
        401,
        "unauthorized",
    );
    assert_error(
        &h.admin_as_server("DELETE", &format!("/admin/tokens/{id}"), None)
            .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn the_server_switch_is_server_scoped() {
    let h = Harness::start().await;
    assert_eq!(
        h.admin_as_server("GET", "/admin/server", None).await.body,
        json!({"push_enabled": true})
    );
    let off = h
        .admin_as_server("PUT", "/admin/server", Some(json!({"push_enabled": false})))
        .await;
    assert_eq!(off.body, json!({"push_enabled": false}));
    assert!(!h.store.server_settings().await.unwrap().push_enabled);
    assert_error(
        &h.admin_as_server("PUT", "/admin/server", Some(json!({"push_enabled": "yes"})))
            .await,
        400,
        "invalid_request",
    );
    assert!(!h.store.server_settings().await.unwrap().push_enabled);

    let token = domain_token(&h, h.domain.as_str()).await;
    assert_error(
        &h.admin_call("GET", "/admin/server", Some(&token), None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.admin_call(
            "PUT",
            "/admin/server",
            Some(&token),
            Some(json!({"push_enabled": true})),
        )
        .await,
        403,
        "forbidden",
    );
    assert!(!h.store.server_settings().await.unwrap().push_enabled);
    let audit = h.admin_as_server("GET", "/admin/audit", None).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["token.create", "server.push_off"],
        "newest first; refused changes not audited"
    );
}

#[tokio::test]
async fn domains_are_created_read_updated_and_deleted() {
    let h = Harness::start().await;
    let name = format!(
        "new-{}.example",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let created = h
        .admin_as_server(
            "POST",
            "/admin/domains",
            Some(json!({"name": name.to_uppercase(), "push_enabled": true,
                         "subscribe_url": "https://mail.example/subscribe", "smtp_server": "smtp.example:587"})),
        )
        .await;
    assert_status(&created, 201);
    assert_eq!(created.body["name"], name.as_str());
    assert_eq!(created.body["sent_items_alias"], "Sent Items");
    assert_eq!(created.body["deleted_items_alias"], "Deleted Items");
    assert_error(
        &h.admin_as_server("POST", "/admin/domains", Some(json!({"name": name})))
            .await,
        409,
        "conflict",
    );

    let path = format!("/admin/domains/{name}");
    let before = h.admin_as_server("GET", &path, None).await;
    assert_status(&before, 200);
    for bad in [
        json!({"smtp_server": "not a host"}),
        json!({"subscribe_url": "ftp://x"}),
        json!({"sent_items_alias": ""}),
        json!({"dkim_selector": "bad selector"}),
        json!({"unknown": 1}),
        json!({"push_enabled": "on"}),
    ] {
        assert_error(
            &h.admin_as_server("PATCH", &path, Some(bad.clone())).await,
            400,
            "invalid_request",
        );
        assert_eq!(
            h.admin_as_server("GET", &path, None).await.body,
            before.body,
            "{bad} changed the domain"
        );
    }
    let updated = h
        .admin_as_server(
            "PATCH",
            &path,
            Some(json!({"sent_items_alias": "Sent", "smtp_server": null, "dkim_selector": "s2026", "dkim_key_ref": "arn:aws:secretsmanager:us-east-1:1:secret:dkim"})),
        )
        .await;
    assert_status(&updated, 200);
    assert_eq!(updated.body["sent_items_alias"], "Sent");
    assert_eq!(updated.body["smtp_server"], Value::Null);
    assert_eq!(
        updated.body["subscribe_url"],
        "https://mail.example/subscribe"
    );
    assert_eq!(
        h.admin_as_server("GET", &path, None).await.body,
        updated.body
    );

    let listed = h.admin_as_server("GET", "/admin/domains", None).await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == name.as_str())
    );

    // A domain with accounts cannot be deleted.
    let account = h
        .admin_as_server(
            "POST",
            &format!("{path}/accounts"),
            Some(json!({"address": "zed", "password": "long enough"})),
        )
        .await;
    assert_status(&account, 201);
    assert_error(
        &h.admin_as_server("DELETE", &path, None).await,
        409,
        "conflict",
    );
    assert_status(
        &h.admin_as_server("DELETE", &format!("/admin/accounts/zed@{name}"), None)
            .await,
        200,
    );
    assert_status(&h.admin_as_server("DELETE", &path, None).await, 204);
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
    assert_error(
        &h.admin_as_server("GET", "/admin/domains/not_a_domain!", None)
            .await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn secret_rotation_keeps_both_then_only_the_newer() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let path = format!("/admin/domains/{}/secrets", h.domain);
    let second = h.admin_as_server("POST", &path, None).await;
    assert_status(&second, 201);
    let second_value = second.body["value"].as_str().unwrap().to_owned();
    // A third live secret is refused, and nothing is added.
    assert_error(
        &h.admin_as_server("POST", &path, None).await,
        409,
        "conflict",
    );
    let listed = h.admin_as_server("GET", &path, None).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        !listed.body.to_string().contains(&second_value),
        "a secret value was listed"
    );
    assert_eq!(items[0]["id"], second.body["id"], "newest first");

    let subscribe = |generation: u64| h.subscribe_body(&alice, "r-1", generation);
    assert_status(&h.post_signed_with(&subscribe(1), &h.secret).await, 200);
    assert_status(&h.post_signed_with(&subscribe(2), &second_value).await, 200);

    let first_id = items[1]["id"].as_str().unwrap();
    assert_status(
        &h.admin_as_server("DELETE", &format!("{path}/{first_id}"), None)
            .await,
        204,
    );
    assert_error(
        &h.admin_as_server("DELETE", &format!("{path}/{first_id}"), None)
            .await,
        404,
        "not_found",
    );
    assert_eq!(
        h.post_signed_with(&subscribe(3), &h.secret).await.body["error"],
        "bad_signature"
    );
    assert_status(&h.post_signed_with(&subscribe(4), &second_value).await, 200);
    // With one retired, a new one may be created again.
    assert_status(&h.admin_as_server("POST", &path, None).await, 201);
}

#[tokio::test]
async fn accounts_lifecycle_and_password_never_shown() {
    let h = Harness::start().await;
    let path = format!("/admin/domains/{}/accounts", h.domain);
    let generated = h
        .admin_as_server(
            "POST",
            &path,
            Some(json!({"address": "gen", "display_name": "Gen"})),
        )
        .await;
    assert_status(&generated, 201);
    let password = generated.body["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 16);
    let address = format!("gen@{}", h.domain);
    let read = h
        .admin_as_server("GET", &format!("/admin/accounts/{address}"), None)
        .await;
    assert_status(&read, 200);
    assert!(read.body.get("password").is_none() && !read.body.to_string().contains("argon2"));
    // The account comes with its mailbox: INBOX and the special folders.
    let folders = h
        .store
        .folders(&Address::parse(&address).unwrap())
        .await
        .unwrap();
    assert_eq!(folders.len(), 5);

    for bad in [
        json!({"address": "short", "password": "2short"}),
        json!({"address": "bad address"}),
        json!({"address": format!("x@elsewhere-{}", h.domain)}),
        json!({"address": "x", "pushed_folders": ["INBOX"]}),
        json!({"address": "x", "colour": "red"}),
    ] {
        assert_error(
            &h.admin_as_server("POST", &path, Some(bad.clone())).await,
            400,
            "invalid_request",
        );
    }
    assert_eq!(
        h.store
            .account(&Address::parse(&format!("short@{}", h.domain)).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.store
            .account(&Address::parse(&format!("x@{}", h.domain)).unwrap())
            .await
            .unwrap(),
        None
    );
    assert_error(
        &h.admin_as_server("POST", &path, Some(json!({"address": "gen"})))
            .await,
        409,
        "conflict",
    );

    // The generated password works for SUBSCRIBE; a changed one replaces it.
    let generated_address = Address::parse(&address).unwrap();
    let mut body = h.subscribe_body(&generated_address, "r-1", 1);
    body["password"] = json!(password);
    assert_status(&h.post(&body).await, 200);
    let patched = h
        .admin_as_server(
            "PATCH",
            &format!("/admin/accounts/{address}"),
            Some(json!({"password": "a brand new one", "display_name": null})),
        )
        .await;
    assert_status(&patched, 200);
    assert_eq!(patched.body["display_name"], Value::Null);
    let mut body = h.subscribe_body(&generated_address, "r-1", 2);
    body["password"] = json!(password);
    assert_eq!(h.post(&body).await.body["error"], "bad_credentials");
    body["password"] = json!("a brand new one");
    assert_status(&h.post(&body).await, 200);

    let disabled = h
        .admin_as_server(
            "PATCH",
            &format!("/admin/accounts/{address}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(disabled.body["enabled"], false);
    body["generation"] = json!(3);
    assert_eq!(h.post(&body).await.body["error"], "integration_disabled");

    let page = h
        .admin_as_server("GET", &format!("{path}?limit=10"), None)
        .await;
    assert_eq!(page.body["items"][0]["address"], address.as_str());
    assert_eq!(page.body["cursor"], Value::Null);
    assert_error(
        &h.admin_as_server("GET", &format!("{path}?limit=0"), None)
            .await,
        400,
        "invalid_request",
    );
    assert_error(
        &h.admin_as_server("GET", &format!("{path}?cursor=garbage"), None)
            .await,
        400,
        "invalid_request",
    );
}

#[tokio::test]
async fn deleting_an_integrated_account_unlinks_it_and_tells_the_push_service() {
    let h = Harness::start().await;
    let sink = CallbackSink::start(200).await;
    let alice = h.account("alice").await;
    let mut body = h.subscribe_body(&alice, "r-1", 1);
    body["callback"] = json!(format!("{}r-1", sink.url));
    assert_status(&h.post(&body).await, 200);
    let deleted = h
        .admin_as_server("DELETE", &format!("/admin/accounts/{alice}"), None)
        .await;
    assert_eq!(
        deleted.body,
        json!({"status": "deleted", "unlinked_notice": "attempted"})
    );
    assert_eq!(h.store.account(&alice).await.unwrap(), None);
    assert_eq!(h.store.link(&alice).await.unwrap(), None);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(
        h.post(&h.unsubscribe_body(&alice, "r-1", 1)).await.body,
        json!({"status": "not_subscribed"})
    );
}

#[tokio::test]
async fn a_domain_token_sees_and_changes_nothing_outside_its_domain() {
    let h = Harness::start().await;
    let other = other_domain(&h).await;
    let bob = h
        .admin_as_server(
            "POST",
            &format!("/admin/domains/{other}/accounts"),
            Some(json!({"address": "bob", "password": "bobs password"})),
        )
        .await;
    assert_status(&bob, 201);
    let token = domain_token(&h, h.domain.as_str()).await;
    let own = h.account("alice").await;
    let t = Some(token.as_str());

    // Its own domain works.
    assert_status(
        &h.admin_call("GET", &format!("/admin/domains/{}", h.domain), t, None)
            .await,
        200,
    );
    assert_status(
        &h.admin_call("GET", &format!("/admin/accounts/{own}"), t, None)
            .await,
        200,
    );
    assert_status(
        &h.admin_call(
            "GET",
            &format!("/admin/domains/{}/audit", h.domain),
            t,
            None,
        )
        .await,
        200,
    );
    let listed = h.admin_call("GET", "/admin/domains", t, None).await;
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![h.domain.as_str()]);

    // Nothing of the other domain.
    let bob_address = format!("bob@{other}");
    let forbidden: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/admin/domains/{other}"), None),
        (
            "PATCH",
            format!("/admin/domains/{other}"),
            Some(json!({"push_enabled": false})),
        ),
        ("DELETE", format!("/admin/domains/{other}"), None),
        ("GET", format!("/admin/domains/{other}/secrets"), None),
        ("POST", format!("/admin/domains/{other}/secrets"), None),
        ("GET", format!("/admin/domains/{other}/accounts"), None),
        (
            "POST",
            format!("/admin/domains/{other}/accounts"),
            Some(json!({"address": "eve"})),
        ),
        (
            "GET",
            format!("/admin/domains/{other}/integrated-accounts"),
            None,
        ),
        ("GET", format!("/admin/domains/{other}/audit"), None),
        ("GET", format!("/admin/accounts/{bob_address}"), None),
        (
            "PATCH",
            format!("/admin/accounts/{bob_address}"),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/admin/accounts/{bob_address}"), None),
        (
            "PUT",
            format!("/admin/accounts/{bob_address}/pushed-folders"),
            Some(json!({"folders": ["X"]})),
        ),
        (
            "GET",
            format!("/admin/accounts/{bob_address}/integration"),
            None,
        ),
        (
            "DELETE",
            format!("/admin/accounts/{bob_address}/integration"),
            None,
        ),
        ("GET", "/admin/integrated-accounts".into(), None),
        ("GET", "/admin/audit".into(), None),
        ("GET", "/admin/tokens".into(), None),
        (
            "POST",
            "/admin/tokens".into(),
            Some(json!({"scope": "server"})),
        ),
        (
            "POST",
            "/admin/domains".into(),
            Some(json!({"name": "mine.example"})),
        ),
    ];
    for (method, path, body) in forbidden {
        let answer = h.admin_call(method, &path, t, body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {:?}", answer.body);
    }
    let bob = h
        .store
        .account(&Address::parse(&bob_address).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(bob.enabled && bob.pushed_folders.is_empty());
    assert!(
        h.store
            .domain(&pushmail_core::types::DomainName::parse(&other).unwrap())
            .await
            .unwrap()
            .unwrap()
            .push_enabled
    );
}

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

#[tokio::test]
async fn every_change_is_audited_per_domain() {
    let h = Harness::start().await;
    let (token_id, _) = h
        .server_token
        .trim_start_matches("pma_")
        .split_once('.')
        .unwrap();
    let path = format!("/admin/domains/{}", h.domain);
    assert_status(
        &h.admin_as_server("PATCH", &path, Some(json!({"push_enabled": false})))
            .await,
        200,
    );
    assert_status(
        &h.admin_as_server(
            "POST",
            &format!("{path}/accounts"),
            Some(json!({"address": "carol", "password": "carols password"})),
        )
        .await,
        201,
    );
    // A refused change is not audited.
    assert_status(
        &h.admin_as_server("PATCH", &path, Some(json!({"smtp_server": "bad host"})))
            .await,
        400,
    );
    let audit = h
        .admin_as_server("GET", &format!("{path}/audit"), None)
        .await;
    let items = audit.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["account.create", "domain.update"]);
    assert!(items.iter().all(|e| e["actor"] == token_id));
    assert_eq!(items[0]["target"], format!("carol@{}", h.domain));
}

#[tokio::test]
async fn bodies_must_be_json_and_small() {
    let h = Harness::start().await;
    let client = reqwest::Client::new();
    let url = format!("{}/admin/domains", h.admin_url);
    let form = client
        .post(&url)
        .bearer_auth(&h.server_token)
        .header("content-type", "text/plain")
        .body("name=x.example")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 415);
    let big = json!({"name": "big.example", "dkim_key_ref": "x".repeat(70 * 1024)});
    let big = client
        .post(&url)
        .bearer_auth(&h.server_token)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let broken = client
        .post(&url)
        .bearer_auth(&h.server_token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    assert_eq!(
        h.store
            .domain(&pushmail_core::types::DomainName::parse("big.example").unwrap())
            .await
            .unwrap(),
        None
    );
}

/// Every operation in the OpenAPI description is routed (not the 404/405 fallback).
#[tokio::test]
async fn every_documented_route_exists() {
    let h = Harness::start().await;
    let mut path = String::new();
    let mut operations = 0;
    for line in pushmail_admin_api::OPENAPI_YAML.lines() {
        if let Some(p) = line.strip_prefix("  /").and_then(|p| p.strip_suffix(':')) {
            path = format!("/{p}");
            continue;
        }
        let Some(method) = ["get", "put", "post", "patch", "delete"]
            .into_iter()
            .find(|m| line.starts_with(&format!("    {m}:")))
        else {
            continue;
        };
        if path.is_empty() || line.starts_with("components") {
            continue;
        }
        let concrete = path
            .replace("{domain}", h.domain.as_str())
            .replace("{address}", &format!("nobody@{}", h.domain))
            .replace("{id}", "nothing");
        let answer = h
            .admin_as_server(&method.to_uppercase(), &concrete, None)
            .await;
        let fallback = answer.status == 405
            || answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no such route"));
        assert!(
            !fallback,
            "{method} {path} is documented but not routed: {:?}",
            answer.body
        );
        operations += 1;
    }
    assert!(
        operations >= 30,
        "only {operations} operations found in openapi.yaml"
    );
}
