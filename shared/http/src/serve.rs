//! The local listeners' accept loop (on Lambda, API Gateway does this): a cap on connections,
//! in all and per source address, a time limit on each request's header and on each request as
//! a whole, and a graceful shutdown. What an unauthenticated peer can make a listener hold is
//! bounded by these (docs/security.md).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use pushmail_core::network::SourceCounts;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tracing::{info, warn};

/// How long requests in flight may finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What one listener allows each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// To send a request's header, counted from when the connection waits for it: so also how
    /// long a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// To send the body and be answered, once the header is in.
    pub request_timeout: Duration,
    /// Open connections; more wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// Open connections from one IP address; more are closed at once.
    pub max_connections_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_connections_per_source: 64,
        }
    }
}

/// Serves the router until `shutdown` completes (the process's [`crate::Shutdown`]), then lets
/// requests in flight finish (30 s).
pub async fn serve_until(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        answer_within,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = Arc::new(SourceCounts::default());
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let source = pushmail_core::network::source_of(peer.ip());
        let Some(source_slot) = sources.enter(source, limits.max_connections_per_source) else {
            warn!(%source, "connection refused: too many from this source");
            continue;
        };
        let service =
            app.clone()
                .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A peer that breaks off or times out ends its own connection; nothing to report.
            let _ = connection.await;
            drop((permit, source_slot));
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => info!("stopped"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => warn!("stopped with requests still in flight"),
    }
    Ok(())
}

/// Answers 408 when the request (body and handling) takes longer than allowed.
async fn answer_within(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::json_response(
            408,
            serde_json::json!({
                "error": "request_timeout",
                "detail": "the request was not sent and answered in time",
            }),
            None,
        ),
    }
}
