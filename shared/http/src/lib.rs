//! HTTP plumbing shared by pushmail's routers and mains: serving a router until a shutdown
//! signal, handing it to the Lambda runtime, the client's address, and JSON answers.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod serve;
mod shutdown;

pub use serve::{Limits, serve_until};
pub use shutdown::Shutdown;

/// Hands the router to the Lambda runtime.
pub async fn run_on_lambda(app: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(app).await
}

/// Whether the request announces a body larger than `limit` bytes: refused before any of it is
/// read, rather than waited for.
pub fn announces_more_than(headers: &http::HeaderMap, limit: usize) -> bool {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

/// The caller's IP: from API Gateway's request context on Lambda, from the socket locally.
pub fn source_address(extensions: &http::Extensions) -> Option<String> {
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) =
        extensions.get::<lambda_http::request::RequestContext>()
    {
        return context.http.source_ip.clone();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_string())
}

/// A JSON answer that is never cached, with `Retry-After` when given.
pub fn json_response(
    status: u16,
    body: serde_json::Value,
    retry_after_secs: Option<u64>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
