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

/// Names of fresh accounts that wait for the dispatcher; past this the store's due order alone
/// brings them (at its next poll).
const FRESH_CAPACITY: usize = 1024;

/// Wakes the new-mail notice dispatcher and names the accounts whose deliveries recorded a
/// notice: its next pass works them even before the store's order of due accounts shows them
/// (on DynamoDB that order is an index, read a moment behind its writes).
#[derive(Debug, Default)]
pub struct NoticeWaker {
    wake: Notify,
    fresh: std::sync::Mutex<Vec<Address>>,
}

impl NoticeWaker {
    /// A delivery recorded a notice for `account`.
    pub fn noticed(&self, account: &Address) {
        {
            let mut fresh = self.fresh();
            if fresh.len() < FRESH_CAPACITY && !fresh.contains(account) {
                fresh.push(account.clone());
            }
        }
        self.wake.notify_one();
    }

    /// Waits for the next [`noticed`](Self::noticed) (one made while nobody waited counts).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The accounts named since the last call.
    pub fn take_fresh(&self) -> Vec<Address> {
        std::mem::take(&mut *self.fresh())
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, Vec<Address>> {
        // A list of names: still whole if a holder panicked.
        self.fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Who hears that a message was stored: the notice dispatcher, when the delivery recorded a
/// new-mail notice (it wakes and sends it), and the IMAP sessions watching the account, in this
/// process and the others. Either may be left out.
#[derive(Debug, Clone, Default)]
pub struct Arrivals {
    notices: Option<Arc<NoticeWaker>>,
    changes: Option<ChangeHints>,
}

impl Arrivals {
    /// Wakes the dispatcher whose waker this is.
    pub fn waking(mut self, dispatcher: Arc<NoticeWaker>) -> Self {
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
            notices.noticed(account);
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
        let dispatcher = Arc::new(NoticeWaker::default());
        let hints = ChangeHints::new();
        let mut woken = hints.subscribe();
        let arrivals = Arrivals::default()
            .waking(dispatcher.clone())
            .hinting(hints.clone());
        let alice = Address::parse("alice@example.com").unwrap();
        arrivals.stored(&alice, false);
        assert_eq!(woken.recv().await.unwrap(), alice);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), dispatcher.woken());
        assert!(waited.await.is_err(), "woken without a notice");
        assert!(dispatcher.take_fresh().is_empty());
        arrivals.stored(&alice, true);
        arrivals.stored(&alice, true);
        assert_eq!(woken.recv().await.unwrap(), alice);
        dispatcher.woken().await;
        assert_eq!(dispatcher.take_fresh(), vec![alice.clone()], "named once");
        assert!(dispatcher.take_fresh().is_empty());
        // Nobody listening: nothing to tell, nothing fails.
        Arrivals::default().stored(&alice, true);
    }

    #[test]
    fn fresh_accounts_are_bounded() {
        let waker = NoticeWaker::default();
        for i in 0..10_000 {
            waker.noticed(&Address::parse(&format!("user{i}@example.com")).unwrap());
        }
        assert_eq!(waker.take_fresh().len(), FRESH_CAPACITY);
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
