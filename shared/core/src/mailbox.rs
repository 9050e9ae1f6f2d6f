//! Mailboxes: the folders every account has, messages as the store keeps them, and the
//! envelope read from a message's header (what a new-mail notice and IMAP need).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::folder::FolderName;
use crate::names::Address;

/// A folder's SPECIAL-USE role (RFC 6154), for every client and for the push service's aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
}

impl SpecialUse {
    /// The attribute as IMAP's LIST shows it.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Sent => "\\Sent",
            Self::Drafts => "\\Drafts",
            Self::Trash => "\\Trash",
            Self::Junk => "\\Junk",
        }
    }
}

/// The folders created with every account.
pub const DEFAULT_FOLDERS: [(&str, Option<SpecialUse>); 5] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
];

/// One folder of an account, with the counters IMAP needs: UIDs are allocated from
/// `uid_next`, strictly increasing and never reused while `uid_validity` stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub account: Address,
    pub name: FolderName,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub special_use: Option<SpecialUse>,
    /// Messages in the folder.
    pub messages: u32,
    pub created_at: DateTime<Utc>,
    /// IMAP's subscription (LSUB). Every folder starts subscribed, so clients that show only
    /// subscribed folders see the default ones and those filing rules create.
    #[serde(default = "subscribed_by_default")]
    pub subscribed: bool,
    /// IMAP's `\Recent` (RFC 3501 §2.3.2): the highest UID a read-write session has claimed
    /// as recent. Messages above it are recent to the next session that selects the folder
    /// or hears of them, and to that one only.
    #[serde(default)]
    pub recent_up_to: u32,
}

fn subscribed_by_default() -> bool {
    true
}

impl Folder {
    /// A new, empty folder. `uid_validity` is the creation time in seconds, as servers commonly
    /// choose: a folder deleted and created again gets a new one.
    ///
    /// `floor` is the highest UIDVALIDITY the account's address ever gave a folder (kept by the
    /// store, even across the account's deletion): the new one is above it, so a name that
    /// comes back (DELETE and CREATE in one second, RENAME onto an old name, an address
    /// created anew) never gets a UIDVALIDITY it had, and a client's cached UIDs are never
    /// taken for other messages (RFC 3501 §2.3.1.1).
    pub fn new(
        account: Address,
        name: FolderName,
        special_use: Option<SpecialUse>,
        at: DateTime<Utc>,
        floor: u32,
    ) -> Self {
        let seconds = u32::try_from(at.timestamp()).unwrap_or(u32::MAX);
        Self {
            account,
            name,
            uid_validity: seconds.max(floor.saturating_add(1)).max(1),
            uid_next: 1,
            highest_modseq: 1,
            special_use,
            messages: 0,
            created_at: at,
            subscribed: true,
            recent_up_to: 0,
        }
    }

    /// Whether no session has claimed the message with this UID as recent yet.
    pub fn is_unclaimed_recent(&self, uid: u32) -> bool {
        uid > self.recent_up_to
    }

    /// What a claim of the messages up to `up_to` takes: the UIDs above the current mark up
    /// to `up_to` (empty if another session claimed them first), and the mark after it.
    pub fn claim_recent(&self, up_to: u32) -> (std::ops::RangeInclusive<u32>, u32) {
        (
            Self::recent_claimed(self.recent_up_to, up_to),
            self.recent_up_to.max(up_to),
        )
    }

    /// The UIDs a claim up to `up_to` took when the mark stood at `previous`.
    pub fn recent_claimed(previous: u32, up_to: u32) -> std::ops::RangeInclusive<u32> {
        previous.saturating_add(1)..=up_to
    }
}

/// What a notice and IMAP's ENVELOPE need from a message's header, decoded (RFC 2047 words,
/// folded lines). Every field is optional: a message may lack any header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
    pub list_id: Option<String>,
}

/// Fields cut to this many characters: an envelope is metadata, not a place for a whole header.
const MAX_FIELD_CHARS: usize = 998;
const MAX_RECIPIENTS: usize = 100;

fn cut(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

impl Envelope {
    /// Reads the envelope from a raw message (its header only).
    pub fn parse(raw: &[u8]) -> Self {
        let Some(message) = crate::message::parse_header(raw) else {
            return Self::default();
        };
        let addresses = |list: Option<&mail_parser::Address<'_>>| -> Vec<String> {
            list.map(|list| {
                list.iter()
                    .filter_map(|addr| addr.address())
                    .take(MAX_RECIPIENTS)
                    .map(cut)
                    .collect()
            })
            .unwrap_or_default()
        };
        Self {
            from: addresses(message.from()).into_iter().next(),
            to: addresses(message.to()),
            cc: addresses(message.cc()),
            subject: message.subject().map(cut),
            date: message
                .date()
                .and_then(|date| DateTime::from_timestamp(date.to_timestamp(), 0)),
            message_id: message.message_id().map(cut),
            list_id: message.header_raw("List-Id").map(|v| cut(v.trim())),
        }
    }
}

/// A message as the store keeps it, but for its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: DateTime<Utc>,
    pub size: u64,
    pub modseq: u64,
    pub envelope: Envelope,
}

impl MessageMeta {
    pub fn into_state(self) -> MessageState {
        MessageState {
            uid: self.uid,
            flags: self.flags,
            internal_date: self.internal_date,
            size: self.size,
            modseq: self.modseq,
        }
    }
}

/// Whether `flag` is `\Deleted`, which marks a message for the next EXPUNGE (flags compare
/// case-insensitively, RFC 3501 §2.3.2).
pub fn is_deleted_flag(flag: &str) -> bool {
    flag.eq_ignore_ascii_case("\\Deleted")
}

/// Whether `flag` is `\Seen`, which marks a message read (flags compare case-insensitively).
pub fn is_seen_flag(flag: &str) -> bool {
    flag.eq_ignore_ascii_case("\\Seen")
}

/// What a message's flags say, for each record that carries them.
pub trait Flagged {
    fn flags(&self) -> &[String];

    /// Whether the message carries `flag` (flags compare case-insensitively, RFC 3501 §2.3.2).
    fn has_flag(&self, flag: &str) -> bool {
        self.flags().iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    /// Flagged for removal by the next EXPUNGE.
    fn is_deleted(&self) -> bool {
        self.flags().iter().any(|flag| is_deleted_flag(flag))
    }

    fn is_seen(&self) -> bool {
        self.flags().iter().any(|flag| is_seen_flag(flag))
    }
}

impl Flagged for MessageMeta {
    fn flags(&self) -> &[String] {
        &self.flags
    }
}

impl Flagged for MessageState {
    fn flags(&self) -> &[String] {
        &self.flags
    }
}

/// A message's metadata but its envelope: what SELECT, STATUS, EXPUNGE and FETCH's stored items
/// read, for every message of a folder at times, so a store reads it without the envelope
/// where it can (the same stored record: the envelope is passed over, not decoded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageState {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: DateTime<Utc>,
    pub size: u64,
    pub modseq: u64,
}

/// A message's UID and whether it carries one flag: what a walk of a whole folder that counts
/// by that flag reads (STATUS UNSEEN), cheaper than its state where the backend can read the
/// flag alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagMark {
    pub uid: u32,
    pub set: bool,
}

/// A change of a message's flags (IMAP STORE, or a FETCH of its body marking it seen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    Replace(Vec<String>),
}

/// Folders one account may have, however they are made: IMAP CREATE (or RENAME), or a filing
/// rule filing into a folder that is not there yet (that mail then goes to INBOX).
pub const MAX_FOLDERS: usize = 1_000;

/// Subscriptions an account keeps for folders it deleted (RFC 3501 §6.3.6: deleting a folder
/// does not unsubscribe it); past these, a deleted folder's subscription goes with it. Clients
/// rarely delete a folder they keep subscribed; each delete reads what is kept, so it stays
/// small.
pub const MAX_KEPT_SUBSCRIPTIONS: usize = 100;

/// Flags (system flags and keywords) one message may carry; a STORE or APPEND naming more is
/// refused (`NO [LIMIT]`), and no change makes a message carry more. Dovecot allows a few
/// hundred keywords per folder; real clients use a handful.
pub const MAX_FLAGS_PER_MESSAGE: usize = 128;

/// Messages one APPEND may store at once (IMAP MULTIAPPEND, RFC 3502), all or none: on
/// DynamoDB they go in one transaction of at most 100 items, two for each message (its
/// metadata and its change) besides the folder, the account's state and its owner check.
pub const MAX_MESSAGES_PER_APPEND: usize = 40;

impl FlagChange {
    /// The flags the change names.
    pub fn named(&self) -> &[String] {
        match self {
            Self::Replace(flags) | Self::Add(flags) | Self::Remove(flags) => flags,
        }
    }

    /// The flags after the change; flags compare case-insensitively (RFC 3501 §2.3.2) and are
    /// kept once, in the order they came, at most [`MAX_FLAGS_PER_MESSAGE`] (those there
    /// before first). Linear in the flags: it runs inside the store's write transaction.
    pub fn apply(&self, flags: &[String]) -> Vec<String> {
        let folded = |flag: &String| flag.to_ascii_lowercase();
        let candidates: Box<dyn Iterator<Item = &String>> = match self {
            Self::Replace(new) => Box::new(new.iter()),
            Self::Add(new) => Box::new(flags.iter().chain(new)),
            Self::Remove(gone) => {
                let gone: std::collections::HashSet<String> = gone.iter().map(folded).collect();
                Box::new(flags.iter().filter(move |f| !gone.contains(&folded(f))))
            }
        };
        let mut seen = std::collections::HashSet::new();
        candidates
            .filter(|flag| seen.insert(folded(flag)))
            .take(MAX_FLAGS_PER_MESSAGE)
            .cloned()
            .collect()
    }
}

/// A message to store: its raw bytes (CRLF lines, as received) and what to record with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub raw: Vec<u8>,
    pub flags: Vec<String>,
    pub internal_date: DateTime<Utc>,
    /// When the writer knew the account it stores for (the account's creation time as read at
    /// RCPT or login, or the time the message was made): stored only while the account is
    /// the one known then ([`crate::account::Account::was_known_at`]). `None`: any account of
    /// the address will do (the store's own writes, tests).
    pub owner_known_at: Option<DateTime<Utc>>,
}

impl NewMessage {
    /// Whether `owner`, the account at the address now, is the one this message is for.
    pub fn is_for(&self, owner: &crate::account::Account) -> bool {
        self.owner_known_at.is_none_or(|at| owner.was_known_at(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_changes_keep_each_flag_once_and_at_most_the_bound() {
        let had = vec!["\\Seen".to_owned(), "work".to_owned()];
        let add = FlagChange::Add(vec!["WORK".into(), "home".into(), "\\seen".into()]);
        assert_eq!(add.apply(&had), ["\\Seen", "work", "home"]);
        let remove = FlagChange::Remove(vec!["\\SEEN".into()]);
        assert_eq!(remove.apply(&had), ["work"]);
        // 100,000 distinct keywords (an attacker's STORE): linear, and cut to the bound with
        // what was there first.
        let many: Vec<String> = (0..100_000).map(|n| format!("k{n}")).collect();
        let after = FlagChange::Add(many.clone()).apply(&had);
        assert_eq!(after.len(), MAX_FLAGS_PER_MESSAGE);
        assert_eq!(after[..2], had[..]);
        assert_eq!(FlagChange::Remove(many).apply(&after), had);
    }

    #[test]
    fn the_envelope_is_decoded_from_the_header() {
        let raw = b"From: =?UTF-8?B?SsO2cmc=?= <joerg@example.org>\r\n\
            To: alice@example.com, \"Bob\" <bob@example.com>\r\n\
            Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= aus\r\n  Berlin\r\n\
            Date: Fri, 27 Nov 2026 10:00:00 +0100\r\n\
            Message-ID: <m1@example.org>\r\n\
            List-Id: Rust users <rust.lists.example.org>\r\n\
            \r\n\
            body\r\n";
        let envelope = Envelope::parse(raw);
        assert_eq!(envelope.from.as_deref(), Some("joerg@example.org"));
        assert_eq!(envelope.to, vec!["alice@example.com", "bob@example.com"]);
        assert_eq!(envelope.subject.as_deref(), Some("Grüße aus Berlin"));
        let nine_utc = DateTime::parse_from_rfc3339("2026-11-27T09:00:00Z").unwrap();
        assert_eq!(envelope.date, Some(nine_utc.into()));
        assert_eq!(envelope.message_id.as_deref(), Some("m1@example.org"));
        assert_eq!(
            envelope.list_id.as_deref(),
            Some("Rust users <rust.lists.example.org>")
        );
        assert_eq!(Envelope::parse(b""), Envelope::default());
    }

    #[test]
    fn every_account_gets_inbox_and_the_special_folders() {
        let names: Vec<_> = DEFAULT_FOLDERS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["INBOX", "Sent", "Drafts", "Trash", "Junk"]);
        for (name, _) in DEFAULT_FOLDERS {
            assert!(FolderName::parse(name).is_ok());
        }
    }
}
