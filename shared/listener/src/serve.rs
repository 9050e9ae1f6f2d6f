//! A mail listener: the accept loop (`accept.rs`) serving one session per connection, within
//! the session time limit, a panic in one ending that one alone.

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;

use tokio::net::{TcpListener, TcpStream};
use tracing::{error, info, warn};

use crate::accept::{Accepted, Caps, Departure, SHUTDOWN_GRACE, accept_until, drain};
use crate::proxy::TrustedProxies;

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;

/// A protocol's sessions, as a listener runs them.
pub trait Conversation: Send + Sync + 'static {
    /// Runs one session on an accepted connection to its end. The future lives in the
    /// session's task itself, not boxed apart: one allocation per session, not two.
    /// `departure` holds the session's place among its source's connections: the session
    /// gives it back as it says goodbye, so a peer that reconnects at once finds it free.
    fn converse(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        departure: Departure,
    ) -> impl Future<Output = ()> + Send;
    /// What a peer over its per-source limit is told before the connection closes (a whole
    /// line of the protocol, CRLF included).
    fn too_many_connections(&self) -> &'static [u8];
    /// The protocol's name, for the logs.
    fn protocol(&self) -> &'static str;
}

/// What one listener allows each peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open sessions; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open sessions from one IP address; more are told 421 and closed.
    pub max_connections_per_source: usize,
    /// The longest a session may last, whatever it does.
    pub session_timeout: Duration,
    /// Peers (a load balancer) whose connections start with a PROXY v2 header naming the
    /// client, whose address the limits and the session then see; empty: none.
    pub proxies: TrustedProxies,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_source: 50,
            session_timeout: Duration::from_secs(30 * 60),
            proxies: TrustedProxies::default(),
        }
    }
}

/// A session counted open while it lives (panics and timeouts included).
struct OpenSession(&'static str);

impl OpenSession {
    fn counted(protocol: &'static str) -> Self {
        use pushmail_core::metric_names::{SESSIONS, SESSIONS_OPEN};
        metrics::counter!(SESSIONS, "protocol" => protocol).increment(1);
        metrics::gauge!(SESSIONS_OPEN, "protocol" => protocol).increment(1.0);
        Self(protocol)
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics::gauge!(pushmail_core::metric_names::SESSIONS_OPEN, "protocol" => self.0)
            .decrement(1.0);
    }
}

/// What a panic said, if it said it as text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

/// Control characters escaped, so a panic message quoting input cannot forge log lines.
fn escape_default(text: &str) -> String {
    text.chars().flat_map(char::escape_debug).collect()
}

/// A protocol's sessions as the accept loop serves them: each within the session time limit,
/// a panic in one caught and logged with its context.
struct Sessions<C> {
    conversation: Arc<C>,
    session_timeout: Duration,
}

impl<C: Conversation> Accepted for Sessions<C> {
    fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        departure: Departure,
    ) -> impl Future<Output = ()> + Send + 'static {
        // Replies are whole lines written at once: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        let sessions = self.clone();
        async move {
            let protocol = sessions.conversation.protocol();
            let _open = OpenSession::counted(protocol);
            let session = sessions.conversation.converse(stream, peer, departure);
            // A panic (a bug, an input no one foresaw) ends this session alone: caught here
            // with its context, its connection closed and its places given back on unwinding.
            match AssertUnwindSafe(tokio::time::timeout(sessions.session_timeout, session))
                .catch_unwind()
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => warn!(%peer, protocol, "session ended: too long"),
                Err(panic) => error!(
                    %peer,
                    protocol,
                    panic = %escape_default(panic_message(panic.as_ref())),
                    "session ended by a panic; the listener goes on"
                ),
            }
        }
    }

    fn refuse(&self, mut stream: TcpStream) -> impl Future<Output = ()> + Send + 'static {
        let refusal = self.conversation.too_many_connections();
        async move {
            let _ = stream.write_all(refusal).await;
        }
    }
}

/// Serves sessions until `shutdown` completes, then lets those in flight finish (30 s).
pub async fn serve<C: Conversation>(
    listener: TcpListener,
    conversation: Arc<C>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let protocol = conversation.protocol();
    let sessions = Arc::new(Sessions {
        conversation,
        session_timeout: limits.session_timeout,
    });
    let caps = Caps {
        max_connections: limits.max_connections,
        max_connections_per_source: limits.max_connections_per_source,
        proxies: Arc::new(limits.proxies),
    };
    let open = accept_until(listener, sessions, caps, shutdown).await;
    if drain(open, SHUTDOWN_GRACE).await {
        info!(protocol, "listener stopped");
    } else {
        warn!(protocol, "listener stopped with sessions still open");
    }
    Ok(())
}
