//! The embedded backend: one redb file. A write is durable before its caller hears of it (group
//! commit, `writer.rs`: copy-on-write pages, so a crash at any point leaves the last durable
//! state), but for flag changes, `\Recent` claims and expunges, answered at their commit and
//! durable within 50 ms (`writer::Answered`). Write transactions are serialised, so every
//! ordering rule is one read-check-write inside a single write transaction.
//! Records are the domain types as JSON (a message's state excepted: `message_record.rs`);
//! secondary orderings are extra tables of keys.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use pipelined_file::Syncs;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    AccountDelete, AccountUpdate, ChangeWindow, DomainDelete, FailureScope, LinkInsert, LinkQuery,
    SecretAdd, StoreError, StoreResult, TokenDelete, Unlink,
};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Domain, DomainName,
    Link, Page, PushSecret, ServerSettings, StoredMail, TokenScope, UnlinkRule,
};

type Records = TableDefinition<'static, &'static str, &'static str>;

const SETTINGS: Records = TableDefinition::new("settings");
const DOMAINS: Records = TableDefinition::new("domains");
/// `<domain> SEP <created_at> SEP <id>` → secret.
const SECRETS: Records = TableDefinition::new("secrets");
const ACCOUNTS: Records = TableDefinition::new("accounts");
const LINKS: Records = TableDefinition::new("links");
/// `<linked_at> SEP <address>` → "" for live links (all domains).
const LINKS_BY_TIME: Records = TableDefinition::new("links_by_time");
/// `<domain> SEP <linked_at> SEP <address>` → "" for live links.
const LINKS_BY_DOMAIN: Records = TableDefinition::new("links_by_domain");
const OUTBOX: Records = TableDefinition::new("activation_outbox");
/// signature → expiry (unix seconds).
const REPLAY: Records = TableDefinition::new("replay_guard");
/// `<scope> SEP <window start>` → failures.
const FAILURES: Records = TableDefinition::new("failures");
/// `<expiry, unix seconds, 20 digits> SEP <key of FAILURES>` → "": when each counter goes.
const FAILURE_EXPIRY: Records = TableDefinition::new("failures_by_expiry");
/// `<expiry, unix seconds, 20 digits> SEP <signature>` → "": when each REPLAY entry goes.
const REPLAY_EXPIRY: Records = TableDefinition::new("replay_guard_by_expiry");
/// `<kind> SEP <instance>` → unix milliseconds.
const HEARTBEATS: Records = TableDefinition::new("heartbeats");
const TOKENS: Records = TableDefinition::new("tokens");
/// `<domain or SERVER> SEP <at> SEP <id>` → entry.
const AUDIT: Records = TableDefinition::new("audit");
/// `<address> SEP <at> SEP <id>` → mail kept instead of sent.
const MAIL: Records = TableDefinition::new("mail");

const ALL_TABLES: [Records; 16] = [
    MAIL,
    SETTINGS,
    DOMAINS,
    SECRETS,
    ACCOUNTS,
    LINKS,
    LINKS_BY_TIME,
    LINKS_BY_DOMAIN,
    OUTBOX,
    REPLAY,
    REPLAY_EXPIRY,
    FAILURES,
    FAILURE_EXPIRY,
    HEARTBEATS,
    TOKENS,
    AUDIT,
];

/// Separates key parts; below every character that can appear in a name or a timestamp.
const SEP: char = '\u{1}';

/// [`Store`] in one redb file.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: Arc<writer::Writer>,
    /// Each account's last change committed here: `changes_since` reads nothing after it.
    latest_changes: Arc<latest_changes::LatestChanges>,
    /// How much of each account's change log is kept.
    change_window: ChangeWindow,
}

/// What can go wrong inside a transaction.
#[derive(Debug)]
enum Fail {
    Db(redb::Error),
    Store(StoreError),
}

macro_rules! from_redb {
    ($($error:ty),*) => {
        $(impl From<$error> for Fail {
            fn from(error: $error) -> Self {
                Fail::Db(error.into())
            }
        })*
    };
}
from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError
);

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

impl From<Fail> for StoreError {
    fn from(fail: Fail) -> Self {
        match fail {
            Fail::Db(error) => {
                metrics::counter!(pushmail_core::metric_names::STORE_ERRORS, "backend" => "embedded")
                    .increment(1);
                StoreError::Backend(format!("embedded store: {error}"))
            }
            Fail::Store(error) => error,
        }
    }
}

type TxResult<T> = Result<T, Fail>;

fn encode<T: Serialize>(value: &T) -> TxResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn decode<T: DeserializeOwned>(raw: &str) -> TxResult<T> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()).into())
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn key(parts: &[&str]) -> String {
    parts.join(&SEP.to_string())
}

/// `at` (a time, as a number) zero-padded to 20 digits, then `id`: keys in time order, for
/// secondary orderings by due or expiry time. `timed_key(t, "")` sorts after every key of an
/// earlier time and before every key of `t`.
fn timed_key(at: i64, id: &str) -> String {
    key(&[&format!("{:020}", at.max(0)), id])
}

/// Builds `index` (keys to "") from `source` once, for a file kept by a version without the
/// index: when it is opened with the index empty and the source not. `index_key` gives an
/// entry's key in the index from its key and value in the source.
fn build_missing_index(
    txn: &WriteTransaction,
    source: Records,
    index: Records,
    index_key: impl Fn(&str, &str) -> TxResult<String>,
) -> TxResult<()> {
    use redb::ReadableTableMetadata;
    let source = txn.open_table(source)?;
    let mut index = txn.open_table(index)?;
    if index.is_empty()? && !source.is_empty()? {
        for entry in source.iter()? {
            let (key, value) = entry?;
            index.insert(index_key(key.value(), value.value())?.as_str(), "")?;
        }
    }
    Ok(())
}

/// Keys that start with `prefix`, forwards or backwards, strictly after/before `after`.
fn scan(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: Option<&str>,
    newest_first: bool,
) -> TxResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    visit(table, prefix, after, newest_first, |k, v| {
        out.push((k, v));
        Ok(true)
    })?;
    Ok(out)
}

/// Hands each entry of [`scan`]'s range to `keep_going` until it answers `false`. The range
/// starts at the cursor and is read lazily, so a page costs what it returns, not the whole
/// range before and after it.
fn visit(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: Option<&str>,
    newest_first: bool,
    mut keep_going: impl FnMut(String, String) -> TxResult<bool>,
) -> TxResult<()> {
    use std::ops::Bound::{Excluded, Included};
    let end = format!("{prefix}{}", char::MAX);
    // A cursor outside the prefix's range (never made here) starts nothing.
    let after = after.filter(|after| *after >= prefix && *after < end.as_str());
    if newest_first && after == Some(prefix) {
        // Nothing lies before the range's first key.
        return Ok(());
    }
    let bounds = match (after, newest_first) {
        (Some(after), true) => (Included(prefix), Excluded(after)),
        (Some(after), false) => (Excluded(after), Excluded(end.as_str())),
        (None, _) => (Included(prefix), Excluded(end.as_str())),
    };
    let range = table.range::<&str>(bounds)?;
    let mut each = |entry: Result<
        (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &str>),
        redb::StorageError,
    >|
     -> TxResult<bool> {
        let (k, v) = entry?;
        keep_going(k.value().to_owned(), v.value().to_owned())
    };
    if newest_first {
        for entry in range.rev() {
            if !each(entry)? {
                break;
            }
        }
    } else {
        for entry in range {
            if !each(entry)? {
                break;
            }
        }
    }
    Ok(())
}

/// The values of the first `limit` keys that start with `prefix` (the last ones, newest first),
/// decoded as they are read: the read stops where the listing is cut.
fn first_decoded<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    newest_first: bool,
    limit: usize,
) -> TxResult<Vec<T>> {
    let mut values = Vec::new();
    visit(table, prefix, None, newest_first, |_, v| {
        if values.len() < limit {
            values.push(decode(&v)?);
        }
        Ok(values.len() < limit)
    })?;
    Ok(values)
}

/// One page of [`visit`]'s range: the entries `wanted` keeps, at most `limit` of them, and
/// whether there are more (one more is read to know).
fn page_from(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: Option<&str>,
    newest_first: bool,
    limit: usize,
    mut wanted: impl FnMut(&str, &str) -> TxResult<bool>,
) -> TxResult<(Rows, Option<String>)> {
    let mut rows = Vec::new();
    visit(table, prefix, after, newest_first, |k, v| {
        if wanted(&k, &v)? {
            rows.push((k, v));
        }
        Ok(rows.len() <= limit.max(1))
    })?;
    Ok(page_of(rows, limit))
}

/// Keys with their encoded values, in listing order.
type Rows = Vec<(String, String)>;

fn page_of(rows: Rows, limit: usize) -> (Rows, Option<String>) {
    let limit = limit.max(1);
    if rows.len() > limit {
        let rows: Vec<_> = rows.into_iter().take(limit).collect();
        let cursor = URL_SAFE_NO_PAD.encode(&rows[limit - 1].0);
        (rows, Some(cursor))
    } else {
        (rows, None)
    }
}

/// A cursor is the last key of the previous page; it must lie in this listing's key range.
fn cursor_key(cursor: Option<&str>, prefix: &str) -> Result<Option<String>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let key = String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)?;
    if key.starts_with(prefix) {
        Ok(Some(key))
    } else {
        Err(StoreError::BadCursor)
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store file, creating every table so readers never miss one.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let open = || -> TxResult<(Database, Syncs)> {
            let (db, syncs) = pipelined_file::open_database(path)?;
            let txn = db.begin_write()?;
            for table in ALL_TABLES {
                txn.open_table(table)?;
            }
            mailbox::create_tables(&txn)?;
            relay::create_tables(&txn)?;
            outbox::create_tables(&txn)?;
            accounts::create_tables(&txn)?;
            notices::create_tables(&txn)?;
            txn.commit()?;
            Ok((db, syncs))
        };
        let (db, syncs) = open()?;
        let db = Arc::new(db);
        let latest_changes = Arc::new(latest_changes::LatestChanges::default());
        Ok(Self {
            writer: Arc::new(writer::Writer::start(
                db.clone(),
                syncs,
                latest_changes.clone(),
            )?),
            db,
            latest_changes,
            change_window: ChangeWindow::DEFAULT,
        })
    }

    /// The store keeping `window` of each account's change log (the default:
    /// [`ChangeWindow::DEFAULT`]).
    pub fn with_change_window(mut self, window: ChangeWindow) -> Self {
        self.change_window = window;
        self
    }

    /// Runs `work` in the writer's next pass (one write transaction, committed if every write
    /// in it returns Ok; `work` runs again in a transaction of its own if another does not);
    /// answers once the commit is durable (group commit: `writer.rs`).
    async fn write<T: Send + 'static>(
        &self,
        work: impl Fn(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer.run(writer::Answered::Durable, 0, work).await
    }

    /// [`Self::write`] of `bytes` of mail: a pass holds a bounded amount of it.
    async fn write_mail<T: Send + 'static>(
        &self,
        bytes: usize,
        work: impl Fn(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer
            .run(writer::Answered::Durable, bytes, work)
            .await
    }

    /// [`Self::write`], answered once committed and durable within 50 ms
    /// (`writer::Answered::Committed`): only for what a client can simply do again.
    async fn write_committed<T: Send + 'static>(
        &self,
        work: impl Fn(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.writer.run(writer::Answered::Committed, 0, work).await
    }

    /// Runs `work` on a read snapshot, on the caller's thread: a redb read is a walk of pages
    /// the OS keeps in memory (microseconds, never a lock wait: readers see the last commit
    /// while a write runs), far less than handing it to a blocking thread and back, which
    /// profiling showed to be a third of an IMAP command's cost. Reads are bounded (a page of
    /// messages, one account's keys).
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&redb::ReadTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let txn = self
            .db
            .begin_read()
            .map_err(|e| StoreError::from(Fail::from(e)))?;
        work(&txn).map_err(StoreError::from)
    }
}

fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
) -> TxResult<Option<T>> {
    match table.get(key)? {
        Some(raw) => decode(raw.value()).map(Some),
        None => Ok(None),
    }
}

/// Whether [`put_record`] needs the key to exist already (an update), not to (a creation),
/// or writes either way.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    Absent,
    Present,
    Any,
}

/// Writes `value` under `key` if the key's presence is as required; false (and no write) if not.
fn put_record<T: Serialize>(
    txn: &WriteTransaction,
    table: Records,
    key: &str,
    value: &T,
    required: Presence,
) -> TxResult<bool> {
    let mut table = txn.open_table(table)?;
    if required != Presence::Any && table.get(key)?.is_some() != (required == Presence::Present) {
        return Ok(false);
    }
    table.insert(key, encode(value)?.as_str())?;
    Ok(true)
}

fn link_time_key(link: &Link) -> String {
    key(&[&stamp(link.linked_at), link.address.as_str()])
}

fn link_domain_key(link: &Link) -> String {
    key(&[
        link.address.domain().as_str(),
        &stamp(link.linked_at),
        link.address.as_str(),
    ])
}

/// Writes a link and keeps the two integrated-account orderings in step with it.
fn put_link(txn: &WriteTransaction, link: &Link, previous: Option<&Link>) -> TxResult<()> {
    let mut by_time = txn.open_table(LINKS_BY_TIME)?;
    let mut by_domain = txn.open_table(LINKS_BY_DOMAIN)?;
    if let Some(previous) = previous.filter(|l| l.is_linked()) {
        by_time.remove(link_time_key(previous).as_str())?;
        by_domain.remove(link_domain_key(previous).as_str())?;
    }
    if link.is_linked() {
        by_time.insert(link_time_key(link).as_str(), "")?;
        by_domain.insert(link_domain_key(link).as_str(), "")?;
    }
    txn.open_table(LINKS)?
        .insert(link.address.as_str(), encode(link)?.as_str())?;
    Ok(())
}

fn remove_link_record(txn: &WriteTransaction, link: &Link) -> TxResult<()> {
    if link.is_linked() {
        txn.open_table(LINKS_BY_TIME)?
            .remove(link_time_key(link).as_str())?;
        txn.open_table(LINKS_BY_DOMAIN)?
            .remove(link_domain_key(link).as_str())?;
    }
    txn.open_table(LINKS)?.remove(link.address.as_str())?;
    Ok(())
}

fn audit_prefix(domain: Option<&DomainName>) -> String {
    format!("{}{SEP}", domain.map_or("SERVER", DomainName::as_str))
}

mod accounts;
mod admin;
mod deliver;
mod domains;
mod expunge;
mod flags;
mod guards;
mod kept_mail;
mod latest_changes;
mod links;
mod liveness;
mod mailbox;
mod message_record;
mod notices;
mod outbox;
mod pipelined_file;
mod relay;
mod writer;
