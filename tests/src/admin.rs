//! The admin API's test helpers.

use serde_json::json;

use crate::{Harness, assert_status};

/// A second domain with push on, for scope tests.
pub async fn other_domain(h: &Harness) -> String {
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

pub async fn domain_token(h: &Harness, domain: &str) -> String {
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
