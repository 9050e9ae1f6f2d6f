//! Credentials verified a moment ago, so that a client logging in again and again (a mail client
//! per folder, a push service per account, imaptest's stress load) costs one argon2id check per
//! TTL instead of one per login — Dovecot's auth_cache.
//!
//! What is kept is a keyed digest (HMAC-SHA256 under a key drawn at random when the process
//! starts, never written anywhere) of the address, the password and the account's stored hash
//! and revision: never the password, and nothing that helps guess it offline. Any change to the
//! account (a new password, an admin's update: the revision moves; a deletion: no account to
//! compare with) makes its entries miss at once, in this process and every other, since each
//! check reads the account first. Entries expire after the TTL; the cache holds a bounded number
//! and forgets the oldest. A hit still counts under the rate limits like any check.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::account::Account;

/// How long a verified login is trusted without argon2 by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// How many verified logins are kept by default.
pub const DEFAULT_ENTRIES: usize = 10_000;

type Digest = [u8; 32];

pub struct VerifiedCache {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    until: HashMap<Digest, Instant>,
    /// Insertion order, for forgetting the oldest when full.
    order: VecDeque<Digest>,
}

static CACHE: OnceLock<VerifiedCache> = OnceLock::new();

impl VerifiedCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self {
            key,
            ttl,
            capacity,
            entries: Mutex::default(),
        }
    }

    /// Sets the process's cache (a TTL of zero turns it off); before the first login, once.
    /// Later calls change nothing.
    pub fn configure(ttl: Duration, capacity: usize) {
        let _ = CACHE.set(Self::new(ttl, capacity));
    }

    /// The process's cache (the defaults unless configured).
    pub fn get() -> &'static Self {
        CACHE.get_or_init(|| Self::new(DEFAULT_TTL, DEFAULT_ENTRIES))
    }

    fn digest(&self, account: &Account, password: &str) -> Digest {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        for part in [
            account.address.as_str().as_bytes(),
            password.as_bytes(),
            account.password_hash.as_bytes(),
            &account.revision.to_be_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` was verified for `account`, as it is now, within the TTL.
    pub fn holds(&self, account: &Account, password: &str) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let digest = self.digest(account, password);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .until
            .get(&digest)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Remembers that `password` is right for `account` as it is now.
    pub fn remember(&self, account: &Account, password: &str) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let digest = self.digest(account, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + self.ttl;
        if entries.until.insert(digest, until).is_none() {
            entries.order.push_back(digest);
        }
        while entries.until.len() > self.capacity {
            match entries.order.pop_front() {
                Some(oldest) => {
                    entries.until.remove(&oldest);
                }
                None => break,
            }
        }
        // Expired entries at the front go as new ones come.
        let now = Instant::now();
        while let Some(front) = entries.order.front().copied() {
            match entries.until.get(&front) {
                Some(until) if *until > now => break,
                _ => {
                    entries.order.pop_front();
                    entries.until.remove(&front);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(revision: u64) -> Account {
        Account {
            address: crate::types::Address::parse("a@example.com").unwrap(),
            password_hash: "$argon2id$stored".into(),
            enabled: true,
            display_name: None,
            pushed_folders: Vec::new(),
            created_at: chrono::Utc::now(),
            revision,
            quota_bytes: None,
            sender_aliases: Vec::new(),
            filing_rules: Vec::new(),
        }
    }

    #[test]
    fn a_verified_login_holds_until_the_account_changes_or_the_ttl_ends() {
        let cache = VerifiedCache::new(Duration::from_millis(200), 10);
        let alice = account(1);
        assert!(!cache.holds(&alice, "pw"));
        cache.remember(&alice, "pw");
        assert!(cache.holds(&alice, "pw"));
        assert!(!cache.holds(&alice, "other"), "another password");
        assert!(!cache.holds(&account(2), "pw"), "the account changed");
        let mut rehashed = alice.clone();
        rehashed.password_hash = "$argon2id$new".into();
        assert!(!cache.holds(&rehashed, "pw"), "a new password hash");
        std::thread::sleep(Duration::from_millis(250));
        assert!(!cache.holds(&alice, "pw"), "expired");
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity() {
        let cache = VerifiedCache::new(Duration::from_secs(60), 3);
        let accounts: Vec<Account> = (0..5).map(account).collect();
        for a in &accounts {
            cache.remember(a, "pw");
        }
        assert!(!cache.holds(&accounts[0], "pw"), "the oldest forgotten");
        assert!(cache.holds(&accounts[4], "pw"));
        assert_eq!(cache.entries.lock().unwrap().until.len(), 3);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = VerifiedCache::new(Duration::ZERO, 10);
        cache.remember(&account(1), "pw");
        assert!(!cache.holds(&account(1), "pw"));
    }
}
