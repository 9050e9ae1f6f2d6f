//! The one accept loop of every local listener, mail and HTTP alike: connections in all up to a
//! cap (more wait in the kernel's backlog), per source (an IPv6 /64 is one) up to a cap (more
//! are refused in the listener's own way), a back-off when accepting fails, and at shutdown the
//! connections in flight given a grace period to finish. What serves a connection is the
//! listener's: a mail `Conversation`, or hyper for HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_core::network::{SourceCounts, SourceSlot};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::proxy::{ProxyError, TrustedProxies};

/// How long connections in flight may finish once the listener stops accepting.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What one listener holds open at once, and whose PROXY v2 headers it believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    pub max_connections: usize,
    pub max_connections_per_source: usize,
    /// Peers whose connections start with a PROXY v2 header naming the client (`proxy.rs`);
    /// empty: none.
    pub proxies: Arc<TrustedProxies>,
}

/// A connection's place among its source's connections. Given back by [`Departure::leave`] just
/// before a session's last reply (`221`, `BYE`): a client that opens its next connection the
/// moment it reads that reply (Postfix's `smtp-source`, an upstream relay) must not find the
/// place still taken and be refused. Given back anyway when the connection ends.
#[derive(Default)]
pub struct Departure(Option<SourceSlot>);

impl Departure {
    pub fn leave(&mut self) {
        self.0 = None;
    }
}

/// What serves the connections a listener accepts.
pub trait Accepted: Send + Sync + 'static {
    /// Serves one connection to its end; `departure` is its place among its source's.
    fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        departure: Departure,
    ) -> impl Future<Output = ()> + Send + 'static;
    /// Refuses a connection from a source already at its cap (a line of the protocol, or
    /// nothing but the close).
    fn refuse(&self, stream: TcpStream) -> impl Future<Output = ()> + Send + 'static;
}

/// Accepts connections until `shutdown` completes; the connections still being served.
pub async fn accept_until<A: Accepted>(
    listener: TcpListener,
    server: Arc<A>,
    caps: Caps,
    shutdown: impl Future<Output = ()>,
) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(caps.max_connections.max(1)));
    let sources = Arc::new(SourceCounts::default());
    let mut connections = JoinSet::new();
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
        // Reap finished connections so the set stays the size of the open ones.
        while connections.try_join_next().is_some() {}
        let (server, sources, proxies) = (server.clone(), sources.clone(), caps.proxies.clone());
        let per_source = caps.max_connections_per_source;
        // In the connection's own task: a PROXY header is waited for there, not here.
        connections.spawn(async move {
            let mut stream = stream;
            let peer = match proxies.trusts(&peer) {
                false => peer,
                true => match proxies.client(&mut stream, peer).await {
                    Ok(client) => client,
                    // A balancer's TCP health check opens and closes without a byte: not news.
                    Err(ProxyError::Io(error))
                        if error.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        debug!(%peer, "closed before a PROXY header (a health check)");
                        return;
                    }
                    Err(error) => {
                        warn!(%peer, %error, "connection closed: no valid PROXY header");
                        return;
                    }
                },
            };
            let source = pushmail_core::network::source_of(peer.ip());
            let Some(place) = sources.enter(source, per_source) else {
                warn!(%source, "connection refused: too many from this source");
                server.refuse(stream).await;
                return;
            };
            server.serve(stream, peer, Departure(Some(place))).await;
            drop(permit);
        });
    }
    connections
}

/// Waits for the connections still being served, at most `grace`; whether all finished.
pub async fn drain(mut connections: JoinSet<()>, grace: Duration) -> bool {
    tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_ok()
}
