//! Each account's last change counter committed by this process's writes: a read of the change
//! log after it would find nothing, so `changes_since` answers without one (an IMAP command ends
//! with that read, and most find nothing new). The embedded store is one process's (redb locks
//! its file), so every change of its accounts is committed here.
//!
//! Never below a change a reader can see: a write's counters are published on the thread that
//! committed it, after the commit and before the write is answered, and only ever raise an
//! account's figure. An account not known is read. A figure too high (a write that logged a
//! change, then failed) costs reads until a commit reaches it, never a change.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use pushmail_core::types::Address;

thread_local! {
    /// Counters logged by writes on this thread since its last commit.
    static LOGGED: RefCell<Vec<(Address, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Accounts known at most: past it all are forgotten (which costs reads, never a change).
const MOST_KNOWN: usize = 100_000;

/// Called for each change a write logs, in its transaction.
pub(super) fn logged(account: &Address, counter: u64) {
    LOGGED.with_borrow_mut(|logged| logged.push((account.clone(), counter)));
}

#[derive(Default)]
pub(super) struct LatestChanges {
    known: Mutex<HashMap<Address, u64>>,
}

impl LatestChanges {
    /// After a commit on this thread, whatever its outcome: what its writes logged.
    pub fn publish(&self) {
        let logged = LOGGED.with_borrow_mut(std::mem::take);
        if logged.is_empty() {
            return;
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() + logged.len() > MOST_KNOWN {
            known.clear();
        }
        for (account, counter) in logged {
            let latest = known.entry(account).or_insert(counter);
            *latest = (*latest).max(counter);
        }
    }

    /// Whether this process committed no change of `account` after `after` (`false` when it
    /// does not know).
    pub fn nothing_after(&self, account: &Address, after: u64) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(account).is_some_and(|&latest| latest <= after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_commit_published_is_known_and_it_only_rises() {
        let latest = LatestChanges::default();
        let alice = Address::parse("alice@example.com").unwrap();
        let bob = Address::parse("bob@example.com").unwrap();
        assert!(!latest.nothing_after(&alice, 0), "unknown: read");
        logged(&alice, 5);
        assert!(
            !latest.nothing_after(&alice, 5),
            "logged, not yet published"
        );
        latest.publish();
        assert!(latest.nothing_after(&alice, 5));
        assert!(!latest.nothing_after(&alice, 4));
        assert!(!latest.nothing_after(&bob, 100), "another account: unknown");
        logged(&alice, 3);
        latest.publish();
        assert!(!latest.nothing_after(&alice, 4), "never lowered");
        // Logged on another thread: published by that thread's commit, not this one's.
        let latest = std::sync::Arc::new(latest);
        let (other, theirs) = (latest.clone(), bob.clone());
        std::thread::spawn(move || {
            logged(&theirs, 9);
            other.publish();
        })
        .join()
        .unwrap();
        assert!(latest.nothing_after(&bob, 9) && !latest.nothing_after(&bob, 8));
    }
}
