//! The Subscribe URL as an axum `Router`: handed to `lambda_http::run` on AWS, or served on a
//! local port. A thin adapter: every rule lives in `crate::service`.

use std::sync::Arc;

use crate::service::{IncomingRequest, PushService};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use pushmail_core::protocol::{
    ErrorCode, MAX_BODY_BYTES, Refusal, Reply, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// The path the Subscribe URL is served on.
pub const SUBSCRIBE_PATH: &str = "/subscribe";

pub fn router(service: Arc<PushService>) -> Router {
    Router::new()
        .route(SUBSCRIBE_PATH, post(subscribe))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

async fn subscribe(State(service): State<Arc<PushService>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let source = pushmail_http::source_address(&parts.extensions);
    // Stops reading at the limit, so an oversize body is never buffered whole; one announced
    // as oversize is not waited for at all.
    let announced_too_large = pushmail_http::announces_more_than(&parts.headers, MAX_BODY_BYTES);
    let body = match announced_too_large {
        true => Err(()),
        false => axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(drop),
    };
    let Ok(body) = body else {
        return reply_response(
            Refusal::new(ErrorCode::TooLarge, "the body is larger than 16 KiB").into(),
        );
    };
    let headers = &parts.headers;
    let reply = service
        .handle(IncomingRequest {
            content_type: header_str(headers, header::CONTENT_TYPE.as_str()),
            timestamp: header_str(headers, TIMESTAMP_HEADER),
            signature: header_str(headers, SIGNATURE_HEADER),
            body: &body,
            source: source.as_deref(),
        })
        .await;
    reply_response(reply)
}

async fn not_found() -> Response {
    let refusal = Refusal::new(
        ErrorCode::InvalidRequest,
        "no such route: the Subscribe URL is POST /subscribe",
    );
    let mut response = reply_response(refusal.into());
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// Another method on the Subscribe URL: 405 with `Allow: POST` and the error body.
async fn method_not_allowed() -> Response {
    let refusal = Refusal::new(
        ErrorCode::InvalidRequest,
        "the Subscribe URL takes POST only",
    );
    let mut response = reply_response(refusal.into());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn reply_response(reply: Reply) -> Response {
    pushmail_http::json_response(reply.status, reply.body, reply.retry_after_secs)
}
