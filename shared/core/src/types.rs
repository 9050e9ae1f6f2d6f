//! The domain's vocabulary: addresses, settings, accounts and push links.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::account::{Account, MAX_SENDER_ALIASES};
pub use crate::names::{Address, DomainName, InvalidName, quoted};

/// The current time to the millisecond, the resolution pushmail stores times at (so a value
/// reads back equal from every backend).
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Server-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSettings {
    /// The server-wide push integration switch; off until an admin turns it on.
    pub push_enabled: bool,
}

/// A local mail domain and its push integration settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub name: DomainName,
    pub push_enabled: bool,
    /// Where the push service sends SUBSCRIBE/UNSUBSCRIBE for this domain.
    pub subscribe_url: Option<String>,
    /// The SMTP host the push service uses to send mail composed on the device.
    pub smtp_server: Option<String>,
    pub sent_items_alias: String,
    pub deleted_items_alias: String,
    /// DKIM selector for mail the SMTP listener signs for this domain.
    pub dkim_selector: Option<String>,
    /// Where the DKIM private key is kept (e.g. a Secrets Manager ARN); never the key itself.
    pub dkim_key_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Domain {
    pub const DEFAULT_SENT_ITEMS: &'static str = "Sent Items";
    pub const DEFAULT_DELETED_ITEMS: &'static str = "Deleted Items";

    /// The names an integrated account's Sent and Trash folders also answer to (the mission
    /// page's "Sent Items"/"Deleted Items" aliases), whatever the folders are really called.
    pub fn folder_aliases(&self) -> [(&str, crate::mailbox::SpecialUse); 2] {
        [
            (
                self.sent_items_alias.as_str(),
                crate::mailbox::SpecialUse::Sent,
            ),
            (
                self.deleted_items_alias.as_str(),
                crate::mailbox::SpecialUse::Trash,
            ),
        ]
    }

    pub fn new(name: DomainName, created_at: DateTime<Utc>) -> Self {
        Self {
            name,
            push_enabled: false,
            subscribe_url: None,
            smtp_server: None,
            sent_items_alias: Self::DEFAULT_SENT_ITEMS.to_owned(),
            deleted_items_alias: Self::DEFAULT_DELETED_ITEMS.to_owned(),
            dkim_selector: None,
            dkim_key_ref: None,
            created_at,
        }
    }
}

/// One of a domain's HMAC secrets (spec §1). At most two are live at once, for rotation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSecret {
    pub id: String,
    pub value: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for PushSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushSecret")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// What the device told the push service about itself (free text, optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Whether the activation mail of a subscription has gone out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationState {
    Pending,
    Sent,
}

impl ActivationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
        }
    }
}

/// Whether an account's push link is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Linked,
    /// Kept as a tombstone: its generation is the high-water mark a later SUBSCRIBE must beat,
    /// so a stale SUBSCRIBE arriving after the unlink cannot bring the link back.
    Unlinked,
    /// A tombstone an admin made (the integrated account removed): as `Unlinked`, except that
    /// a SUBSCRIBE signed after the removal may link again whatever its generation.
    Removed,
}

/// An account's link to a push service: at most one per account (the "integrated account").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub address: Address,
    /// pushmail's id of this subscription; a superseding SUBSCRIBE gets a new one.
    pub subscription_id: String,
    pub registration: String,
    pub generation: u64,
    pub callback: String,
    pub device: Option<Device>,
    pub state: LinkState,
    pub activation: ActivationState,
    pub linked_at: DateTime<Utc>,
    pub unlinked_at: Option<DateTime<Utc>>,
}

/// What an UNSUBSCRIBE of (`registration`, `generation`) does to an account's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkRule {
    /// The link is live and not newer than the request: it becomes a tombstone.
    Unlink,
    /// No live link: nothing to do (a late or repeated UNSUBSCRIBE).
    NotLinked,
    /// A newer live link exists: the request is stale and changes nothing.
    Newer,
}

/// The link rules (spec §2–3), written once: both store backends and the services decide with
/// these methods (DynamoDB's condition expressions state the same rules in its own language,
/// and each refusal is explained with them).
impl Link {
    pub fn is_linked(&self) -> bool {
        self.state == LinkState::Linked
    }

    /// A SUBSCRIBE of `generation`, signed at `signed_at`, may replace this link (live or
    /// tombstone) only if it is strictly newer: the first of two equal generations wins, and a
    /// tombstone's generation is the bar a stale SUBSCRIBE cannot pass. After an admin's
    /// removal, a SUBSCRIBE signed after it (by the whole second) links again whatever its
    /// generation: the removal, not the device, ended the link, and the push service's counter
    /// may stand anywhere, even at 2^64−1; one signed before it still needs a higher generation.
    pub fn yields_to(&self, generation: u64, signed_at: DateTime<Utc>) -> bool {
        generation > self.generation
            || (self.state == LinkState::Removed
                && self.unlinked_at.is_some_and(|removed| removed < signed_at))
    }

    /// Whether `subscription_id` is this account's live subscription (activation mail and
    /// notices belong to the current subscription only).
    pub fn is_current(&self, subscription_id: &str) -> bool {
        self.is_linked() && self.subscription_id == subscription_id
    }

    /// What an UNSUBSCRIBE of (`registration`, `generation`) does: it unlinks a live link of a
    /// lower generation, or of the same generation and registration.
    pub fn unlink_rule(&self, registration: &str, generation: u64) -> UnlinkRule {
        if !self.is_linked() {
            UnlinkRule::NotLinked
        } else if self.generation < generation
            || (self.generation == generation && self.registration == registration)
        {
            UnlinkRule::Unlink
        } else {
            UnlinkRule::Newer
        }
    }

    /// This link as a tombstone from `at`, keeping `generation` (at least its own) as the bar.
    pub fn tombstone(&self, at: DateTime<Utc>, generation: u64) -> Self {
        Self {
            state: LinkState::Unlinked,
            unlinked_at: Some(at),
            generation: generation.max(self.generation),
            ..self.clone()
        }
    }

    /// This link as an admin's removal from `at` (see [`Link::yields_to`]).
    pub fn removed(&self, at: DateTime<Utc>) -> Self {
        Self {
            state: LinkState::Removed,
            ..self.tombstone(at, self.generation)
        }
    }
}

/// The activation mail of one subscription, waiting in the outbox until SES has taken it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationJob {
    pub subscription_id: String,
    pub address: Address,
    pub device: Option<Device>,
    pub linked_at: DateTime<Utc>,
    /// Failed sends so far.
    pub attempts: u32,
    /// Not to be tried before this time (a claim's lease, or the backoff after a failure).
    pub not_before: DateTime<Utc>,
}

/// What an admin bearer token may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "domain", rename_all = "snake_case")]
pub enum TokenScope {
    Server,
    Domain(DomainName),
}

impl TokenScope {
    pub fn allows_domain(&self, domain: &DomainName) -> bool {
        match self {
            Self::Server => true,
            Self::Domain(own) => own == domain,
        }
    }
}

/// An admin API bearer token; only the SHA-256 of its secret part is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: String,
    pub secret_hash: String,
    pub scope: TokenScope,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminToken")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .field("label", &self.label)
            .finish()
    }
}

/// One change made through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The token that made the change (`self-service` for an account changing its own folders).
    pub actor: String,
    pub action: String,
    pub target: String,
    /// The domain the change belongs to; `None` for server-wide changes.
    pub domain: Option<DomainName>,
}

/// A system mail kept in the store instead of sent (the local process without SES).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMail {
    pub id: String,
    pub to: Address,
    pub subject: String,
    pub body: String,
    pub at: DateTime<Utc>,
}

/// One page of a listing, with the opaque cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_case_folded_and_split() {
        let address = Address::parse("Alice.B@Example.COM").unwrap();
        assert_eq!(address.as_str(), "alice.b@example.com");
        assert_eq!(address.local_part(), "alice.b");
        assert_eq!(address.domain().as_str(), "example.com");
    }

    fn live_link(registration: &str, generation: u64) -> Link {
        Link {
            address: Address::parse("alice@example.com").unwrap(),
            subscription_id: "sub_1".into(),
            registration: registration.into(),
            generation,
            callback: "https://push.example.net/n/1".into(),
            device: None,
            state: LinkState::Linked,
            activation: ActivationState::Pending,
            linked_at: now(),
            unlinked_at: None,
        }
    }

    #[test]
    fn untrusted_text_is_quoted_escaped_and_cut() {
        assert_eq!(quoted("a\r\nb\u{1b}[31m"), r#""a\r\nb\u{1b}[31m""#);
        let long = quoted(&"x".repeat(10_000));
        assert!(long.len() < 80 && long.ends_with("…\""), "{long}");
        let error = Address::parse("evil\r\nINFO forged@example.com").unwrap_err();
        assert!(
            !error.0.contains('\n') && !error.0.contains('\r'),
            "{}",
            error.0
        );
    }

    #[test]
    fn link_rules() {
        let link = live_link("r-1", 5);
        let at = now();
        assert!(link.yields_to(6, at) && !link.yields_to(5, at) && !link.yields_to(4, at));
        assert!(link.is_current("sub_1") && !link.is_current("sub_2"));
        assert_eq!(link.unlink_rule("r-1", 5), UnlinkRule::Unlink);
        assert_eq!(link.unlink_rule("r-2", 6), UnlinkRule::Unlink);
        assert_eq!(link.unlink_rule("r-2", 5), UnlinkRule::Newer);
        assert_eq!(link.unlink_rule("r-1", 4), UnlinkRule::Newer);
        let tombstone = link.tombstone(now(), 7);
        assert!(!tombstone.is_linked() && !tombstone.is_current("sub_1"));
        assert_eq!(tombstone.generation, 7);
        assert_eq!(link.tombstone(now(), 2).generation, 5);
        assert_eq!(tombstone.unlink_rule("r-1", 9), UnlinkRule::NotLinked);
        assert!(!tombstone.yields_to(7, at) && tombstone.yields_to(8, at));
        let top = live_link("r-1", u64::MAX);
        let removed_at = now();
        let removed = top.removed(removed_at);
        assert!(!removed.is_linked());
        assert_eq!(removed.unlink_rule("r-1", u64::MAX), UnlinkRule::NotLinked);
        let second = chrono::Duration::seconds(1);
        assert!(
            !removed.yields_to(1, removed_at - second),
            "signed before the removal"
        );
        assert!(
            removed.yields_to(1, removed_at + second),
            "signed after the removal"
        );
        assert!(
            !top.tombstone(removed_at, u64::MAX)
                .yields_to(1, removed_at + second)
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "al ice@example.com",
            "alice@exa_mple.com",
            "alice@-example.com",
            ".alice@example.com",
            "a..b@example.com",
            "alice@example..com",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
