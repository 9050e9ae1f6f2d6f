//! Shedding idle sessions under pressure (Postfix's stress mode): when more sessions are open
//! than `SmtpSettings::shed_above`, each new one ends the session that has waited longest
//! without a transaction (no MAIL FROM yet), which is told 421 and may come back later. A
//! flood of idle connections cannot keep real mail out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Idlers(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    open: usize,
    next: u64,
    /// Sessions waiting for a command outside a transaction, oldest first.
    waiting: BTreeMap<u64, Arc<Notify>>,
}

/// An open session; counted until dropped.
pub(crate) struct Open(Arc<Idlers>);

/// A session waiting outside a transaction: told when it is shed; no longer sheddable when
/// dropped.
pub(crate) struct Waiting {
    idlers: Arc<Idlers>,
    id: u64,
    pub shed: Arc<Notify>,
}

impl Idlers {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new session; with more than `shed_above` open, the longest-waiting idle one
    /// is told to go.
    pub fn open(self: &Arc<Self>, shed_above: usize) -> Open {
        let mut inner = self.inner();
        inner.open += 1;
        if inner.open > shed_above
            && let Some((_, oldest)) = inner.waiting.pop_first()
        {
            oldest.notify_one();
        }
        Open(self.clone())
    }

    /// Marks a session as waiting outside a transaction.
    pub fn waiting(self: &Arc<Self>) -> Waiting {
        let mut inner = self.inner();
        let id = inner.next;
        inner.next += 1;
        let shed = Arc::new(Notify::new());
        inner.waiting.insert(id, shed.clone());
        Waiting {
            idlers: self.clone(),
            id,
            shed,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut inner = self.0.inner();
        inner.open = inner.open.saturating_sub(1);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.idlers.inner().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_mark_the_longest_idle_session_is_told_first() {
        let idlers = Arc::new(Idlers::default());
        let _a = idlers.open(2);
        let first = idlers.waiting();
        let _b = idlers.open(2);
        let second = idlers.waiting();
        // A third session: over the mark, the first idler goes.
        let _c = idlers.open(2);
        tokio::time::timeout(std::time::Duration::from_secs(1), first.shed.notified())
            .await
            .expect("the oldest is shed");
        // The second is not.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), second.shed.notified())
                .await
                .is_err()
        );
    }
}
