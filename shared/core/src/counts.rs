//! Places held per key up to a limit, given back when dropped: connections per source address
//! (the listeners), logged-in sessions per account (IMAP).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct Counts<K>(Mutex<HashMap<K, usize>>);

impl<K> Default for Counts<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

/// One place of a key; gives it back when dropped.
#[derive(Debug)]
pub struct Place<K: Hash + Eq + Clone> {
    counts: Arc<Counts<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Counts<K> {
    /// Takes a place for `key`, unless it holds `limit` already.
    pub fn enter(self: &Arc<Self>, key: K, limit: usize) -> Option<Place<K>> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(key.clone()).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Place {
            counts: self.clone(),
            key,
        })
    }
}

impl<K: Hash + Eq + Clone> Drop for Place<K> {
    fn drop(&mut self) {
        let mut held = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_key_and_given_back() {
        let counts = Arc::new(Counts::default());
        let first = counts.enter("alice", 2).unwrap();
        let _second = counts.enter("alice", 2).unwrap();
        assert!(counts.enter("alice", 2).is_none());
        assert!(counts.enter("bob", 2).is_some(), "per key");
        drop(first);
        assert!(counts.enter("alice", 2).is_some());
    }
}
