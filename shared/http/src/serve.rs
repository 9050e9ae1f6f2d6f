//! The local HTTP listeners (on Lambda, API Gateway does this) on the one accept loop
//! (`pushmail-listener`'s: a cap on connections, in all and per source address, and a graceful
//! shutdown), with a time limit on each request's header and on each request as a whole. What an unauthenticated peer can make a listener hold is
//! bounded by these (docs/security.md).

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use pushmail_listener::{Accepted, Caps, Departure, SHUTDOWN_GRACE, accept_until, drain};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;
use tracing::{info, warn};

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

/// The HTTP side of the accept loop: each connection served by hyper with the header timeout,
/// asked to finish gracefully (the request in flight answered, keep-alive ended) once the
/// listener stops accepting.
struct Http {
    app: Router,
    builder: hyper::server::conn::http1::Builder,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Accepted for Http {
    fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        departure: Departure,
    ) -> impl Future<Output = ()> + Send + 'static {
        let service = self.app.clone().map_request(
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection = self
            .builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut closing = self.closing.clone();
        async move {
            let _place = departure;
            tokio::pin!(connection);
            // A peer that breaks off or times out ends its own connection; nothing to report.
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closing.wait_for(|closing| *closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }

    fn refuse(&self, stream: TcpStream) -> impl Future<Output = ()> + Send + 'static {
        // Closed at once: an HTTP client over its cap gets no answer to read.
        drop(stream);
        std::future::ready(())
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
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let (close, closing) = tokio::sync::watch::channel(false);
    let http = Arc::new(Http {
        app,
        builder,
        closing,
    });
    // HTTP is never behind the mail listeners' balancer: no PROXY header is believed.
    let caps = Caps {
        max_connections: limits.max_connections,
        max_connections_per_source: limits.max_connections_per_source,
        proxies: Default::default(),
    };
    let open = accept_until(listener, http, caps, shutdown).await;
    close.send_replace(true);
    if drain(open, SHUTDOWN_GRACE).await {
        info!("stopped");
    } else {
        warn!("stopped with requests still in flight");
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
