//! The admin console and the user's page as the admin listener serves them (the browser flows
//! themselves run in chromium, `tests/e2e/browser.py`): each file with its media type and a
//! strict Content-Security-Policy, nothing else under their folders; and the two routes only
//! the user's page needed, `/self/folders` and `/self/integration`, on the account's own
//! credentials and no one else's.

use pushmail_tests::{CallbackSink, Harness, PASSWORD};

#[tokio::test]
async fn the_pages_and_their_files_are_served_with_a_strict_policy() {
    let h = Harness::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, media_type) in [
        ("/admin/ui/", "text/html"),
        ("/self/ui/", "text/html"),
        ("/admin/ui/admin.js", "text/javascript"),
        ("/self/ui/self.js", "text/javascript"),
        ("/admin/ui/console.css", "text/css"),
    ] {
        let answer = client
            .get(format!("{}{path}", h.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(media_type), "{path}");
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
    }
    // Only the console's own files: no path leaves the folder, nothing else is read.
    for path in [
        "/admin/ui/nothing.js",
        "/admin/ui/..%2FCargo.toml",
        "/admin/ui/%2e%2e%2fopenapi.yaml",
        "/self/ui/..%2f..%2fetc%2fpasswd",
    ] {
        let answer = client
            .get(format!("{}{path}", h.admin_url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
    let folder = client
        .get(format!("{}/admin/ui", h.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(folder.status(), 308);
    assert_eq!(folder.headers()["location"], "/admin/ui/");
}

#[tokio::test]
async fn an_account_reads_its_own_folders_and_device_link_and_nobody_elses() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;

    let folders = h
        .self_call_at("/self/folders", "GET", alice.as_str(), PASSWORD, None)
        .await;
    assert_eq!(folders.status, 200, "{:?}", folders.body);
    let names: Vec<&str> = folders.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|folder| folder["name"].as_str())
        .collect();
    assert!(names.contains(&"INBOX"), "{names:?}");

    // No device yet: a clear 404, not an empty link.
    let none = h
        .self_call_at("/self/integration", "GET", alice.as_str(), PASSWORD, None)
        .await;
    assert_eq!(none.status, 404, "{:?}", none.body);

    let sink = CallbackSink::start(200).await;
    h.integrate(&alice, &sink, "r-alice", 1).await;
    let linked = h
        .self_call_at("/self/integration", "GET", alice.as_str(), PASSWORD, None)
        .await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    assert_eq!(linked.body["address"], alice.as_str());
    assert_eq!(linked.body["registration"], "r-alice");
    assert!(linked.body["notices"]["pending"].is_u64());

    // Bob sees his own (none), whatever he asks; a wrong password sees nothing.
    let bobs = h
        .self_call_at("/self/integration", "GET", bob.as_str(), PASSWORD, None)
        .await;
    assert_eq!(bobs.status, 404);
    for path in ["/self/folders", "/self/integration"] {
        let wrong = h
            .self_call_at(path, "GET", alice.as_str(), "not the password", None)
            .await;
        assert_eq!(wrong.status, 401, "{path}");
    }
}

/// The console's Server screen reads one route: the IMAP heartbeat (SUBSCRIBE's precondition),
/// the relay jobs due, the notice counts; server tokens only.
#[tokio::test]
async fn health_says_whether_imap_runs_and_is_for_server_tokens_only() {
    let h = Harness::start().await;
    let before = h.admin_as_server("GET", "/admin/health", None).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    assert_eq!(before.body["relay_due"], 0);
    assert!(before.body["notices"]["pending"].is_u64());
    h.store
        .record_heartbeat("imap", "test", pushmail_core::types::now())
        .await
        .unwrap();
    let after = h.admin_as_server("GET", "/admin/health", None).await;
    assert_eq!(after.body["imap_alive"], true, "{:?}", after.body);
    assert!(after.body["imap_heartbeat"].is_string());

    let domain_token = h
        .admin_as_server(
            "POST",
            "/admin/tokens",
            Some(serde_json::json!({"scope": "domain", "domain": h.domain.as_str(), "label": "d"})),
        )
        .await;
    let token = domain_token.body["token"].as_str().unwrap().to_owned();
    let refused = h
        .admin_call("GET", "/admin/health", Some(&token), None)
        .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
}

/// The DKIM record to publish: named from the selector, its value from the key the reference
/// names, where this server reads keys; a clear refusal where it does not, or without a key.
#[tokio::test]
async fn the_dkim_record_is_published_only_where_keys_are_read() {
    let h = Harness::start().await;
    let path = format!("/admin/domains/{}/dkim-record", h.domain);
    let without_key = h.admin_as_server("GET", &path, None).await;
    assert_eq!(without_key.status, 404, "{:?}", without_key.body);
    assert!(
        without_key.body["detail"]
            .as_str()
            .unwrap()
            .contains("no DKIM selector")
    );
    let set = h
        .admin_as_server(
            "PATCH",
            &format!("/admin/domains/{}", h.domain),
            Some(
                serde_json::json!({"dkim_selector": "s1", "dkim_key_ref": "file:/nonexistent.pem"}),
            ),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    // The harness, like the admin Lambda, reads no keys.
    let not_here = h.admin_as_server("GET", &path, None).await;
    assert_eq!(not_here.status, 404);
    assert!(
        not_here.body["detail"]
            .as_str()
            .unwrap()
            .contains("SES Easy DKIM")
    );
}
