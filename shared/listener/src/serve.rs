//! A mail listener: connections within their bounds, one session each, and a graceful
//! shutdown that lets sessions in flight finish (30 s).

use std::sync::Arc;
use std::time::Duration;

use pushmail_core::network::{SourceCounts, SourceSlot};
use std::net::SocketAddr;
use tokio::io::AsyncWriteExt;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

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

const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A session's place among its source's connections. Given back by [`Departure::leave`] just
/// before the session's last reply (`221`, `BYE`): a client that opens its next connection
/// the moment it reads that reply (Postfix's `smtp-source`, an upstream relay) must not find
/// the place still taken and be told 421. Given back anyway when the session ends.
#[derive(Default)]
pub struct Departure(Option<SourceSlot>);

impl Departure {
    pub fn leave(&mut self) {
        self.0 = None;
    }
}

/// What one listener allows each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open sessions; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open sessions from one IP address; more are told 421 and closed.
    pub max_connections_per_source: usize,
    /// The longest a session may last, whatever it does.
    pub session_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_source: 50,
            session_timeout: Duration::from_secs(30 * 60),
        }
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

/// Serves sessions until `shutdown` completes.
pub async fn serve<C: Conversation>(
    listener: TcpListener,
    conversation: Arc<C>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let sources = Arc::new(SourceCounts::default());
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Replies are whole lines written at once: no reason to hold them back.
        let _ = stream.set_nodelay(true);
        // Reap finished sessions so the set stays the size of the open ones.
        while sessions.try_join_next().is_some() {}
        let source = pushmail_core::network::source_of(peer.ip());
        let Some(source_slot) = sources.enter(source, limits.max_connections_per_source) else {
            let refusal = conversation.too_many_connections();
            tokio::spawn(async move {
                let _ = stream.write_all(refusal).await;
            });
            continue;
        };
        let conversation = conversation.clone();
        sessions.spawn(async move {
            let protocol = conversation.protocol();
            let session = conversation.converse(stream, peer, Departure(Some(source_slot)));
            // A panic (a bug, an input no one foresaw) ends this session alone: caught here
            // with its context, its connection closed and its places given back on unwinding.
            match AssertUnwindSafe(tokio::time::timeout(limits.session_timeout, session))
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
            drop(permit);
        });
    }
    drop(listener);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    let protocol = conversation.protocol();
    match finished {
        Ok(()) => info!(protocol, "listener stopped"),
        Err(_) => warn!(protocol, "listener stopped with sessions still open"),
    }
    Ok(())
}
