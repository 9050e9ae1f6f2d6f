//! The process's stop request: SIGINT or SIGTERM, heard once for every listener.
//!
//! The signal handlers are installed when [`Shutdown::on_signal`] returns, and the request is a
//! state rather than an event: a listener that starts waiting after the signal arrived still
//! sees it. (Each listener registering its own handler on its first poll could miss a SIGTERM
//! that came in between, and the process would then never exit.)

use tokio::sync::watch;

/// A stop request, shared by cloning.
#[derive(Debug, Clone)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
}

impl Shutdown {
    /// Installs the SIGINT and SIGTERM handlers now; the request is made when either arrives.
    /// Must be called within a Tokio runtime.
    pub fn on_signal() -> std::io::Result<Self> {
        let (request, requested) = watch::channel(false);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt())?;
            let mut terminate = signal(SignalKind::terminate())?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                request.send_replace(true);
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            request.send_replace(true);
        });
        Ok(Self { requested })
    }

    /// Completes once the stop was requested, at once if it already was.
    pub async fn requested(mut self) {
        // An error means the requesting side is gone without asking: nothing will ever ask.
        if self.requested.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sigterm_reaches_a_waiter_that_starts_after_it() {
        let shutdown = Shutdown::on_signal().expect("handlers install");
        // SIGTERM to this test process, whose handler is installed above; nobody waits yet.
        let raised = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(raised.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown.requested())
            .await
            .expect("the request is kept until someone waits");
    }
}
