//! Connections per account: a session holds a slot from LOGIN to its end, so one account (or
//! whoever has its password) cannot take every connection the listener has. Counted in this
//! process; each listener process bounds its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pushmail_core::types::Address;

#[derive(Debug, Default)]
pub(crate) struct AccountSlots {
    taken: Mutex<HashMap<Address, usize>>,
}

/// A session's slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct AccountSlot {
    slots: Arc<AccountSlots>,
    account: Address,
}

impl AccountSlots {
    /// A slot for `account`, unless it holds `limit` already.
    pub fn take(self: &Arc<Self>, account: &Address, limit: usize) -> Option<AccountSlot> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let count = taken.entry(account.clone()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(AccountSlot {
            slots: self.clone(),
            account: account.clone(),
        })
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = taken.get_mut(&self.account) {
            *count -= 1;
            if *count == 0 {
                taken.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let slots = Arc::new(AccountSlots::default());
        let alice = Address::parse("alice@example.com").unwrap();
        let bob = Address::parse("bob@example.com").unwrap();
        let first = slots.take(&alice, 2).unwrap();
        let _second = slots.take(&alice, 2).unwrap();
        assert!(slots.take(&alice, 2).is_none());
        assert!(slots.take(&bob, 2).is_some(), "per account");
        drop(first);
        assert!(slots.take(&alice, 2).is_some());
    }
}
