//! Accounts: the record, and the rules about it (whether a password check still stands, who it
//! may send as).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{Address, quoted};

/// A mailbox account of a local domain.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub address: Address,
    /// An argon2id PHC string; never the password itself.
    pub password_hash: String,
    pub enabled: bool,
    pub display_name: Option<String>,
    /// The "BlackBerry Inbox" folders: besides INBOX, whose new mail is pushed to the device.
    pub pushed_folders: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Counts the record's changes: an update applies only to the revision it was made from,
    /// so two writers racing cannot silently undo each other (see `AccountStore`).
    #[serde(default)]
    pub revision: u64,
    /// Bytes the account's messages may take; `None`: no limit.
    #[serde(default)]
    pub quota_bytes: Option<u64>,
    /// Other addresses of its domain the account may send as (SMTP MAIL FROM), set by an admin.
    /// Mail to them is not delivered to the account: they are for sending only.
    #[serde(default)]
    pub sender_aliases: Vec<Address>,
    /// Filing rules applied at delivery, in order (`FilingRule::file`).
    #[serde(default)]
    pub filing_rules: Vec<crate::rules::FilingRule>,
}

/// At most this many sender aliases per account.
pub const MAX_SENDER_ALIASES: usize = 32;

impl Account {
    /// Whether this account is the one a writer knew at `known_at` (its mail may be stored for
    /// it): created no later. An address deleted and created again since is another person,
    /// and what was meant for the old owner (a delivery whose RCPT came before the deletion,
    /// an APPEND from the old owner's session, a bounce of the old owner's mail) is not theirs.
    pub fn was_known_at(&self, known_at: DateTime<Utc>) -> bool {
        self.created_at <= known_at
    }

    /// What a logged-in session stands on, in one number: the same person (its creation
    /// time), the same password, still enabled. A session whose account no longer gives the
    /// fingerprint it logged in with is ended (deleted, created again, password changed,
    /// disabled).
    pub fn session_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.created_at, &self.password_hash, self.enabled).hash(&mut hasher);
        hasher.finish()
    }

    /// Whether mail may leave with `sender` as its envelope sender: the account itself, or one
    /// of its sender aliases.
    pub fn may_send_as(&self, sender: &Address) -> bool {
        *sender == self.address || self.sender_aliases.contains(sender)
    }

    /// Checks sender aliases for `account`: addresses of its own domain (an admin of one domain
    /// cannot let it send as another's), not the account itself, at most
    /// [`MAX_SENDER_ALIASES`]; duplicates dropped, order kept.
    pub fn check_sender_aliases(account: &Address, raw: &[String]) -> Result<Vec<Address>, String> {
        if raw.len() > MAX_SENDER_ALIASES {
            return Err(format!("at most {MAX_SENDER_ALIASES} sender aliases"));
        }
        let mut aliases: Vec<Address> = Vec::with_capacity(raw.len());
        for text in raw {
            let alias = Address::parse(text)
                .map_err(|_| format!("sender alias {} is not an address", quoted(text)))?;
            if alias.domain() != account.domain() {
                return Err(format!(
                    "sender alias {alias} is not in the account's domain {}",
                    account.domain()
                ));
            }
            if alias == *account {
                return Err(format!("sender alias {alias} is the account itself"));
            }
            if !aliases.contains(&alias) {
                aliases.push(alias);
            }
        }
        Ok(aliases)
    }

    /// Whether a password check made against `checked` still stands for this record: the same
    /// password hash, and the account still enabled.
    pub fn still_admits(&self, checked: &Account) -> bool {
        self.enabled && self.password_hash == checked.password_hash
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("address", &self.address)
            .field("password_hash", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("display_name", &self.display_name)
            .field("pushed_folders", &self.pushed_folders)
            .field("revision", &self.revision)
            .field("quota_bytes", &self.quota_bytes)
            .finish()
    }
}
