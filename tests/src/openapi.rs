//! Every admin API answer the suites receive is checked against the OpenAPI description the
//! API serves (shared/admin-api/openapi.yaml): the path and method must be documented, the
//! status must be one the operation lists (or its `default`, the error answer), and the body
//! must match that response's schema, whose objects admit no undocumented field. So the code
//! and the description cannot drift apart unnoticed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

struct Description {
    document: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

fn description() -> &'static Description {
    static DESCRIPTION: OnceLock<Description> = OnceLock::new();
    DESCRIPTION.get_or_init(|| Description {
        document: serde_norway::from_str(pushmail_admin_api::OPENAPI_YAML)
            .expect("openapi.yaml is YAML"),
        validators: Mutex::default(),
    })
}

/// `~` and `/` escaped for a JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => document
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("openapi.yaml: dangling $ref {pointer}")),
        None => value,
    }
}

/// The documented path template that `path` (without its query) is an instance of.
fn template_of<'a>(paths: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a str> {
    let segments: Vec<&str> = path.split('/').collect();
    paths.keys().map(String::as_str).find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                (part.starts_with('{') && part.ends_with('}') && !segment.is_empty())
                    || part == segment
            })
    })
}

/// Panics unless the answer (`status`, `body` as received) is documented for `method path`.
pub fn check_answer(method: &str, path_and_query: &str, status: u16, body: &str) {
    let description = description();
    let document = &description.document;
    let path = path_and_query.split('?').next().unwrap_or_default();
    let paths = document["paths"]
        .as_object()
        .expect("openapi.yaml has paths");
    let Some(template) = template_of(paths, path) else {
        // Unknown routes answer 404 with the error body, as the description says of errors.
        assert_eq!(
            status, 404,
            "{method} {path}: undocumented path answered {status}"
        );
        return check_schema(
            description,
            "#/components/schemas/Error",
            body,
            method,
            path,
        );
    };
    let method_key = method.to_ascii_lowercase();
    let Some(operation) = paths[template].get(&method_key) else {
        assert_eq!(
            status, 405,
            "{method} {template}: undocumented method answered {status}"
        );
        return check_schema(
            description,
            "#/components/schemas/Error",
            body,
            method,
            path,
        );
    };
    let responses = &operation["responses"];
    let (key, response) = match responses.get(status.to_string()) {
        Some(response) => (status.to_string(), response),
        None => (
            "default".to_owned(),
            responses.get("default").unwrap_or_else(|| {
                panic!("{method} {template}: status {status} is not documented")
            }),
        ),
    };
    if key == "default" {
        assert!(
            status >= 400,
            "{method} {template}: status {status} is not documented (only errors fall to default)"
        );
    }
    let response = resolve(document, response);
    if response
        .get("content")
        .is_some_and(|c| c.get("application/json").is_none())
    {
        return; // Not JSON (the description itself, as YAML).
    }
    match response.pointer("/content/application~1json/schema") {
        None => assert!(
            body.is_empty(),
            "{method} {template} {status}: documented without a body, answered {body}"
        ),
        Some(schema) => {
            let pointer = match schema.get("$ref").and_then(Value::as_str) {
                Some(pointer) => pointer.to_owned(),
                None => format!(
                    "#/paths/{}/{method_key}/responses/{key}/content/application~1json/schema",
                    escape(template)
                ),
            };
            check_schema(description, &pointer, body, method, path);
        }
    }
}

fn check_schema(description: &Description, pointer: &str, body: &str, method: &str, path: &str) {
    let validator = {
        let mut validators = description.validators.lock().expect("validators lock");
        validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                // The whole description as the root, so every `$ref` in it resolves, pointing
                // at the one schema to apply.
                let mut root = description.document.clone();
                root["$ref"] = json!(pointer);
                root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                std::sync::Arc::new(
                    jsonschema::options()
                        .with_draft(jsonschema::Draft::Draft202012)
                        .build(&root)
                        .unwrap_or_else(|e| panic!("openapi.yaml schema {pointer}: {e}")),
                )
            })
            .clone()
    };
    let value: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{method} {path}: the answer is not JSON ({e}): {body}"));
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path}: the answer does not match {pointer} of openapi.yaml: {errors:?}\n{body}"
    );
}

#[cfg(test)]
mod tests {
    use super::check_answer;

    fn refused(method: &str, path: &str, status: u16, body: &str) -> bool {
        std::panic::catch_unwind(|| check_answer(method, path, status, body)).is_err()
    }

    #[test]
    fn documented_answers_pass_and_drift_is_caught() {
        check_answer("GET", "/admin/server", 200, r#"{"push_enabled":true}"#);
        check_answer(
            "GET",
            "/admin/domains/x.example?limit=2",
            404,
            r#"{"detail":"no domain x.example","error":"not_found"}"#,
        );
        check_answer("DELETE", "/admin/tokens/abc", 204, "");
        // An undocumented field, a missing one, a wrong type, an undocumented success status,
        // an unknown error code, a body where none is documented.
        assert!(refused(
            "GET",
            "/admin/server",
            200,
            r#"{"push_enabled":true,"x":1}"#
        ));
        assert!(refused("GET", "/admin/server", 200, r#"{}"#));
        assert!(refused(
            "GET",
            "/admin/server",
            200,
            r#"{"push_enabled":"yes"}"#
        ));
        assert!(refused(
            "GET",
            "/admin/server",
            202,
            r#"{"push_enabled":true}"#
        ));
        assert!(refused(
            "GET",
            "/admin/server",
            400,
            r#"{"detail":"d","error":"oops"}"#
        ));
        assert!(refused(
            "DELETE",
            "/admin/tokens/abc",
            204,
            r#"{"ok":true}"#
        ));
    }
}
