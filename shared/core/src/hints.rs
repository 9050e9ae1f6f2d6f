//! Hints that an account's mailboxes changed, for IMAP sessions to look at the change log at
//! once rather than at their next poll. A hint is only a hint: sessions read what changed from
//! the store, so a lost or late hint delays an `EXISTS`, never loses it.
//!
//! Changes made in this process wake its sessions through an in-memory broadcast and, when
//! other processes share the store, go out through a bounded queue to a pub/sub bridge
//! (`pushmail-hints`: SNS to an SQS queue per process), which brings theirs back with
//! [`ChangeHints::heard`].

use std::sync::Arc;

use tokio::sync::{Notify, broadcast, mpsc};

use crate::types::Address;

/// Hints a slow subscriber may miss before it is told it lagged (and looks anyway).
const WAKE_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub struct ChangeHints {
    wake: broadcast::Sender<Address>,
    outbound: Option<mpsc::Sender<Address>>,
}

impl Default for ChangeHints {
    fn default() -> Self {
        Self::new()
    }
}

impl ChangeHints {
    /// Hints within this process only.
    pub fn new() -> Self {
        Self {
            wake: broadcast::channel(WAKE_CAPACITY).0,
            outbound: None,
        }
    }

    /// Also hands this process's hints to a bridge to other processes; the receiver is the
    /// bridge's, bounded: when it is full, hints are dropped (the others' polls catch up).
    pub fn with_outbound(mut self, capacity: usize) -> (Self, mpsc::Receiver<Address>) {
        let (sender, receiver) = mpsc::channel(capacity);
        self.outbound = Some(sender);
        (self, receiver)
    }

    /// This process changed the account's mailboxes.
    pub fn changed(&self, account: &Address) {
        let _ = self.wake.send(account.clone());
        if let Some(outbound) = &self.outbound {
            let _ = outbound.try_send(account.clone());
        }
    }

    /// Another process changed them (heard from the bridge): wakes this process's sessions.
    pub fn heard(&self, account: &Address) {
        let _ = self.wake.send(account.clone());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Address> {
        self.wake.subscribe()
    }
}

/// Who hears that a message was stored: the notice dispatcher, when the delivery recorded a
/// new-mail notice (it wakes and sends it), and the IMAP sessions watching the account, in this
/// process and the others. Either may be left out.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    notices: Option<Arc<Notify>>,
    changes: Option<ChangeHints>,
}

impl Arrivals {
    /// Wakes the dispatcher whose waker this is.
    pub fn waking(mut self, dispatcher: Arc<Notify>) -> Self {
        self.notices = Some(dispatcher);
        self
    }

    /// Hints the account's sessions.
    pub fn hinting(mut self, changes: ChangeHints) -> Self {
        self.changes = Some(changes);
        self
    }

    /// A message was stored for `account`; `noticed`: its delivery recorded a new-mail notice.
    pub fn stored(&self, account: &Address, noticed: bool) {
        if let Some(notices) = self.notices.as_ref().filter(|_| noticed) {
            notices.notify_one();
        }
        if let Some(changes) = &self.changes {
            // No session listening is fine: the hint is only a hint.
            changes.changed(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stored_message_wakes_the_dispatcher_only_with_a_notice_and_always_hints() {
        let dispatcher = Arc::new(Notify::new());
        let hints = ChangeHints::new();
        let mut woken = hints.subscribe();
        let arrivals = Arrivals::default()
            .waking(dispatcher.clone())
            .hinting(hints.clone());
        let alice = Address::parse("alice@example.com").unwrap();
        arrivals.stored(&alice, false);
        assert_eq!(woken.recv().await.unwrap(), alice);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), dispatcher.notified());
        assert!(waited.await.is_err(), "woken without a notice");
        arrivals.stored(&alice, true);
        assert_eq!(woken.recv().await.unwrap(), alice);
        dispatcher.notified().await;
        // Nobody listening: nothing to tell, nothing fails.
        Arrivals::default().stored(&alice, true);
    }

    #[tokio::test]
    async fn local_changes_go_out_heard_ones_do_not() {
        let (hints, mut outbound) = ChangeHints::new().with_outbound(2);
        let mut woken = hints.subscribe();
        let alice = Address::parse("alice@example.com").unwrap();
        let bob = Address::parse("bob@example.com").unwrap();
        hints.changed(&alice);
        hints.heard(&bob);
        assert_eq!(woken.recv().await.unwrap(), alice);
        assert_eq!(woken.recv().await.unwrap(), bob);
        assert_eq!(outbound.recv().await.unwrap(), alice);
        assert!(
            outbound.try_recv().is_err(),
            "a heard hint is not sent back out"
        );
        // Full: dropped, never blocking the change that made it.
        for _ in 0..5 {
            hints.changed(&alice);
        }
        assert_eq!(outbound.len(), 2);
    }
}
