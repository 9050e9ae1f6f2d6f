//! The admin API against a real DynamoDB/SES endpoint: domains, secrets, accounts and the audit
//! log, with the stored state checked after each refusal. Tokens and scopes: `admin_access.rs`;
//! integrated accounts and pushed folders: `admin_integrated.rs`.

use pushmail_core::types::Address;
use pushmail_tests::{CallbackSink, Harness, assert_error, assert_status};
use serde_json::{Value, json};

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
    h.integrate(&alice, &sink, "r-1", 1).await;
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
