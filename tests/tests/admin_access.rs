//! The admin API's access rules against a real DynamoDB/SES endpoint: tokens required and
//! checked, server and domain scopes, request bodies, and every documented route present.

use pushmail_core::types::Address;
use pushmail_tests::admin::{domain_token, other_domain};
use pushmail_tests::{Harness, assert_error, assert_status};
use serde_json::{Value, json};

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
