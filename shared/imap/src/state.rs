//! The listener's and a session's state: what the listener allows (`ImapSettings`), what all
//! its sessions share (`Imap`), what one session holds (`Session`), and what a command leaves
//! the session to do next. Types only: the commands that use them are in their own files.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_codec::imap_types::command::CommandBody;
use pushmail_core::counts::{Counts, Place};
use pushmail_core::folder::FolderName;
use pushmail_core::hints::ChangeHints;
use pushmail_core::types::Address;
use pushmail_store::Store;
use tokio_rustls::TlsAcceptor;

use crate::identity::Identity;
use crate::view::Selected;

/// What the listener allows.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub hostname: String,
    /// LOGIN without TLS from loopback peers (local tests, `--demo`); never from elsewhere.
    pub plaintext_login_on_loopback: bool,
    /// A session not logged in after this is ended, whatever it sends meanwhile (RFC 3501
    /// §5.4 suggests 30 min after login; before it, much less).
    pub login_timeout: Duration,
    /// After LOGIN (RFC 3501 §5.4: at least 30 minutes).
    pub idle_timeout: Duration,
    /// How often an idling session looks at the change log when no hint came.
    pub idle_poll: Duration,
    /// `* OK Still here` while idling.
    pub keepalive: Duration,
    /// An IDLE ends after this (RFC 2177: clients re-issue it within 29 minutes).
    pub idle_max: Duration,
    /// The largest message APPEND takes (the SMTP listener's bound, so mail that can arrive
    /// can also be filed back).
    pub max_message_bytes: usize,
    /// Folders an account may have.
    pub max_folders: usize,
    /// Sessions one account may have logged in at once (in this process).
    pub max_sessions_per_account: usize,
    /// Sessions with COMPRESS=DEFLATE on at once (in this process): each holds an inflater
    /// (about 50 KB while idle, against 3 KB without); more are told to go on uncompressed.
    pub max_compressed_sessions: usize,
}

impl Default for ImapSettings {
    fn default() -> Self {
        Self {
            hostname: "pushmail.local".into(),
            plaintext_login_on_loopback: false,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_secs(1),
            keepalive: Duration::from_secs(120),
            idle_max: Duration::from_secs(30 * 60),
            max_message_bytes: 25 * 1024 * 1024,
            max_folders: pushmail_core::mailbox::MAX_FOLDERS,
            // Mail clients open a few each (Thunderbird up to 5), the push service its own.
            max_sessions_per_account: 20,
            max_compressed_sessions: 2_000,
        }
    }
}

/// The listener's shared part.
pub struct Imap {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: ImapSettings,
    pub(crate) tls: Option<TlsAcceptor>,
    /// Accounts whose mailboxes changed in this process: idlers wake at once.
    pub(crate) hints: ChangeHints,
    /// True once the listener is shutting down: sessions say BYE between commands and idlers
    /// at once, instead of being cut off when the grace period ends.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
    /// TLS from the first byte (port 993's way) rather than after STARTTLS.
    pub(crate) implicit_tls: bool,
    /// Logged-in sessions per account.
    pub(crate) slots: Arc<Counts<Address>>,
    /// APPEND uploads in flight per account (`wire::APPENDS_IN_FLIGHT_PER_ACCOUNT`).
    pub(crate) appends: Arc<Counts<Address>>,
    /// Sessions with COMPRESS on (`max_compressed_sessions`).
    pub(crate) compressed: Arc<Counts<()>>,
    /// ENVELOPE, BODY and BODYSTRUCTURE of messages fetched lately (`summaries.rs`).
    pub(crate) summaries: Arc<crate::summaries::Summaries>,
}

/// A session's state.
pub(crate) struct Session {
    pub tls: bool,
    /// The logged-in account (its address only: what else a command needs it reads fresh).
    pub user: Option<Address>,
    /// For an integrated account: alias name → the folder it stands for.
    pub aliases: Vec<(FolderName, FolderName)>,
    pub selected: Option<Selected>,
    pub peer: SocketAddr,
    /// CONDSTORE is on (ENABLE, SELECT (CONDSTORE), or a command using it, RFC 7162 §3.1):
    /// FETCH responses carry MODSEQ.
    pub condstore: bool,
    /// QRESYNC is on (ENABLE QRESYNC, RFC 7162 §3.2.3): removals are told as `* VANISHED`.
    pub qresync: bool,
    /// Held from LOGIN to the end of the session.
    pub slot: Option<Place<Address>>,
    /// Held from COMPRESS to the end of the session.
    pub compressed: Option<Place<()>>,
    /// Who logged in, as the account was then (checked again as the session goes on).
    pub identity: Option<Identity>,
    /// Before login, the session ends at this time however busy it keeps (`login_timeout` is
    /// one total, not a wait per command).
    pub login_by: tokio::time::Instant,
    /// What NOTIFY asked to be told of (boxed: most sessions never ask).
    pub watch: Option<Box<crate::notify::Watch>>,
    /// ESEARCH's RETURN options of the SEARCH being answered; only while it runs.
    pub search_return: Option<crate::esearch::Returns>,
}

/// The states of RFC 3501 §3 a session is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated,
    Selected,
}

/// The state a command may be given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// CAPABILITY, NOOP, LOGOUT, ID.
    AnyState,
    /// STARTTLS, AUTHENTICATE, LOGIN.
    NotAuthenticated,
    /// Authenticated or selected (every other command, and those imap-codec cannot read:
    /// MULTIAPPEND, LIST-EXTENDED, NOTIFY).
    Authenticated,
    /// The commands on the selected folder's messages.
    Selected,
}

impl Needs {
    /// Where each command may be given: the one place that says it.
    pub fn of(body: &CommandBody<'_>) -> Self {
        match body {
            CommandBody::Capability
            | CommandBody::Noop
            | CommandBody::Logout
            | CommandBody::Id { .. } => Self::AnyState,
            CommandBody::StartTLS
            | CommandBody::Authenticate { .. }
            | CommandBody::Login { .. } => Self::NotAuthenticated,
            CommandBody::Check
            | CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Thread { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
            | CommandBody::Idle => Self::Selected,
            _ => Self::Authenticated,
        }
    }
}

impl Session {
    pub fn state(&self) -> State {
        match (&self.user, &self.selected) {
            (None, _) => State::NotAuthenticated,
            (Some(_), None) => State::Authenticated,
            (Some(_), Some(_)) => State::Selected,
        }
    }

    /// Why a command that `needs` a state is refused (BAD) in this one, if it is.
    pub fn refusal(&self, needs: Needs) -> Option<&'static str> {
        match (self.state(), needs) {
            (_, Needs::AnyState)
            | (State::NotAuthenticated, Needs::NotAuthenticated)
            | (State::Authenticated | State::Selected, Needs::Authenticated)
            | (State::Selected, Needs::Selected) => None,
            (State::NotAuthenticated, _) => Some("Log in first"),
            (_, Needs::NotAuthenticated) => Some("Already logged in"),
            (State::Authenticated, Needs::Selected) => Some("Select a folder first"),
        }
    }
}

pub(crate) enum Next {
    Continue,
    StartTls,
    /// COMPRESS=DEFLATE was answered OK: both directions are compressed from here on.
    Compress,
    Logout,
}
