//! The sample API Gateway events in functions/*/events/ (for `cargo lambda invoke`), decoded as
//! the Lambda runtime decodes them and answered by the functions' routers: the answers the
//! README promises.

use tower::ServiceExt;

use pushmail_tests::Harness;

async fn answer(router: axum::Router, event_file: &str) -> (u16, serde_json::Value) {
    let path = format!("{}/../functions/{event_file}", env!("CARGO_MANIFEST_DIR"));
    let event = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let request = lambda_http::request::from_str(&event).expect("an API Gateway v2 event");
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, axum::body::Body::from(body.to_vec()));
    let response = router.oneshot(request).await.expect("router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into(),
    ));
    (status, body)
}

#[tokio::test]
async fn the_subscribe_events_answer_as_documented() {
    let h = Harness::start().await;
    let router = || pushmail_push::router(h.service.clone());
    let (status, body) = answer(router(), "subscribe/events/not-json.json").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    for event in [
        "subscribe/events/subscribe.json",
        "subscribe/events/unsubscribe.json",
    ] {
        let (status, body) = answer(router(), event).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("bad_signature")),
            "{event}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("300 seconds"),
            "{event}: {body}"
        );
    }
}

#[tokio::test]
async fn the_admin_events_answer_as_documented() {
    let h = Harness::start().await;
    let router = || pushmail_admin_api::router(h.admin.clone());
    let (status, body) = answer(router(), "admin/events/openapi.json").await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().starts_with("openapi: 3.1.0"));
    // The admin console, the same files from the Lambda as from the process.
    let (status, body) = answer(router(), "admin/events/console.json").await;
    assert_eq!(status, 200);
    assert!(
        body.as_str()
            .unwrap()
            .contains("<title>pushmail admin</title>")
    );
    let (status, body) = answer(router(), "admin/events/list-domains.json").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
}
