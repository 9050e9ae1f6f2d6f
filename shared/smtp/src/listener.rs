//! The SMTP listener: connections within their bounds, one session each, and a graceful
//! shutdown that lets sessions in flight finish (30 s).

use std::sync::Arc;
use std::time::Duration;

use pushmail_core::network::SourceCounts;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::session::Smtp;

const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What one SMTP listener allows each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpLimits {
    /// Open sessions; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open sessions from one IP address; more are told 421 and closed.
    pub max_connections_per_source: usize,
    /// The longest a session may last, whatever it does.
    pub session_timeout: Duration,
}

impl Default for SmtpLimits {
    fn default() -> Self {
        Self {
            max_connections: 256,
            max_connections_per_source: 16,
            session_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Serves SMTP sessions until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    smtp: Arc<Smtp>,
    limits: SmtpLimits,
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
        let Some(source_slot) = sources.enter(peer.ip(), limits.max_connections_per_source) else {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"421 4.7.0 Too many connections from your address\r\n")
                    .await;
            });
            continue;
        };
        let smtp = smtp.clone();
        sessions.spawn(async move {
            let session = smtp.converse(stream, peer);
            if tokio::time::timeout(limits.session_timeout, session)
                .await
                .is_err()
            {
                warn!(%peer, "SMTP session ended: too long");
            }
            drop((permit, source_slot));
        });
    }
    drop(listener);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    match finished {
        Ok(()) => info!("SMTP listener stopped"),
        Err(_) => warn!("SMTP listener stopped with sessions still open"),
    }
    Ok(())
}
