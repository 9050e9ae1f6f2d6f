//! What pushmail's HTTP functions share: running a router on Lambda or on a local port,
//! logging, the client's address, and JSON answers.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// True inside AWS Lambda (and under `cargo lambda watch`).
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// JSON logs on Lambda (with the invocation's request id from the runtime's span), text
/// locally; `PUSHMAIL_LOG_FORMAT=json|text` overrides, `RUST_LOG` filters.
pub fn init_tracing() {
    let json = match std::env::var("PUSHMAIL_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => on_lambda(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .init();
    } else {
        builder.init();
    }
}

/// Hands the router to the Lambda runtime.
pub async fn run_on_lambda(app: Router) -> anyhow::Result<()> {
    lambda_http::run(app).await.map_err(|e| anyhow::anyhow!(e))
}

/// Binds the address in `variable` (or `default`), ready for [`serve`].
pub async fn bind(variable: &str, default: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let address: SocketAddr = std::env::var(variable)
        .unwrap_or_else(|_| default.to_owned())
        .parse()
        .with_context(|| format!("{variable} must be host:port"))?;
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Serves the router until SIGINT or SIGTERM, finishing requests in flight.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> anyhow::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    info!("stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
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
