//! The embedded backend: one redb file. redb commits are durable on return (fsync, copy-on-write
//! pages, so a crash at any point leaves the last committed state) and write transactions are
//! serialised, so every ordering rule is one read-check-write inside a single write transaction.
//! Records are the domain types as JSON; secondary orderings are extra tables of keys.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    AccountDelete, DomainDelete, FailureScope, LinkInsert, LinkQuery, SecretAdd, Store, StoreError,
    StoreResult, Unlink,
};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Domain, DomainName,
    Link, LinkState, Page, PushSecret, ServerSettings, StoredMail,
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
/// `<kind> SEP <instance>` → unix milliseconds.
const HEARTBEATS: Records = TableDefinition::new("heartbeats");
const TOKENS: Records = TableDefinition::new("tokens");
/// `<domain or SERVER> SEP <at> SEP <id>` → entry.
const AUDIT: Records = TableDefinition::new("audit");
/// `<address> SEP <at> SEP <id>` → mail kept instead of sent.
const MAIL: Records = TableDefinition::new("mail");

const ALL_TABLES: [Records; 14] = [
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
    FAILURES,
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
}

/// What can go wrong inside a transaction.
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
            Fail::Db(error) => StoreError::Backend(format!("embedded store: {error}")),
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

/// Keys that start with `prefix`, forwards or backwards, strictly after/before `after`.
fn scan(
    table: &impl ReadableTable<&'static str, &'static str>,
    prefix: &str,
    after: Option<&str>,
    newest_first: bool,
) -> TxResult<Vec<(String, String)>> {
    let end = format!("{prefix}{}", char::MAX);
    let mut out = Vec::new();
    let range = table.range::<&str>(prefix..end.as_str())?;
    let mut push = |entry: Result<
        (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &str>),
        redb::StorageError,
    >|
     -> TxResult<bool> {
        let (k, v) = entry?;
        let (k, v) = (k.value().to_owned(), v.value().to_owned());
        let past_cursor = match after {
            None => true,
            Some(after) if newest_first => k.as_str() < after,
            Some(after) => k.as_str() > after,
        };
        if past_cursor {
            out.push((k, v));
        }
        Ok(true)
    };
    if newest_first {
        for entry in range.rev() {
            push(entry)?;
        }
    } else {
        for entry in range {
            push(entry)?;
        }
    }
    Ok(out)
}

fn page_of(rows: Vec<(String, String)>, limit: usize) -> (Vec<(String, String)>, Option<String>) {
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
        let open = || -> TxResult<Database> {
            let db = Database::create(path)?;
            let txn = db.begin_write()?;
            for table in ALL_TABLES {
                txn.open_table(table)?;
            }
            txn.commit()?;
            Ok(db)
        };
        Ok(Self {
            db: Arc::new(open()?),
        })
    }

    /// Runs `work` in one write transaction on a blocking thread; commits if it returns Ok.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&WriteTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> TxResult<T> {
            let txn = db.begin_write()?;
            let result = work(&txn)?;
            txn.commit()?;
            Ok(result)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("embedded store task: {e}")))?
        .map_err(StoreError::from)
    }

    /// Runs `work` on a read snapshot on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&redb::ReadTransaction) -> TxResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> TxResult<T> { work(&db.begin_read()?) })
            .await
            .map_err(|e| StoreError::Backend(format!("embedded store task: {e}")))?
            .map_err(StoreError::from)
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

#[async_trait]
impl Store for EmbeddedStore {
    async fn server_settings(&self) -> StoreResult<ServerSettings> {
        self.read(|txn| Ok(get(&txn.open_table(SETTINGS)?, "server")?.unwrap_or_default()))
            .await
    }

    async fn put_server_settings(&self, settings: &ServerSettings) -> StoreResult<()> {
        let settings = settings.clone();
        self.write(move |txn| {
            txn.open_table(SETTINGS)?
                .insert("server", encode(&settings)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>> {
        let name = name.clone();
        self.read(move |txn| get(&txn.open_table(DOMAINS)?, name.as_str()))
            .await
    }

    async fn put_domain(&self, domain: &Domain) -> StoreResult<()> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(txn, DOMAINS, domain.name.as_str(), &domain, Presence::Any).map(drop)
        })
        .await
    }

    async fn create_domain(&self, domain: &Domain) -> StoreResult<bool> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(
                txn,
                DOMAINS,
                domain.name.as_str(),
                &domain,
                Presence::Absent,
            )
        })
        .await
    }

    async fn update_domain(&self, domain: &Domain) -> StoreResult<bool> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(
                txn,
                DOMAINS,
                domain.name.as_str(),
                &domain,
                Presence::Present,
            )
        })
        .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.read(|txn| {
            scan(&txn.open_table(DOMAINS)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn delete_domain(&self, name: &DomainName) -> StoreResult<DomainDelete> {
        let name = name.clone();
        self.write(move |txn| {
            // Accounts are keyed by address, so a domain's are found by suffix (one pass).
            let suffix = format!("@{name}");
            let has_accounts = scan(&txn.open_table(ACCOUNTS)?, "", None, false)?
                .iter()
                .any(|(address, _)| address.ends_with(&suffix));
            if has_accounts {
                return Ok(DomainDelete::HasAccounts);
            }
            if txn.open_table(DOMAINS)?.remove(name.as_str())?.is_none() {
                return Ok(DomainDelete::NotFound);
            }
            let prefix = format!("{name}{SEP}");
            let mut secrets = txn.open_table(SECRETS)?;
            for (k, _) in scan(&secrets, &prefix, None, false)? {
                secrets.remove(k.as_str())?;
            }
            Ok(DomainDelete::Deleted)
        })
        .await
    }

    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>> {
        let prefix = format!("{domain}{SEP}");
        self.read(move |txn| {
            scan(&txn.open_table(SECRETS)?, &prefix, None, true)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn add_push_secret(
        &self,
        domain: &DomainName,
        secret: &PushSecret,
        max_live: u32,
    ) -> StoreResult<SecretAdd> {
        let (domain, secret) = (domain.clone(), secret.clone());
        self.write(move |txn| {
            if txn.open_table(DOMAINS)?.get(domain.as_str())?.is_none() {
                return Ok(SecretAdd::NoSuchDomain);
            }
            let mut secrets = txn.open_table(SECRETS)?;
            let prefix = format!("{domain}{SEP}");
            if scan(&secrets, &prefix, None, false)?.len() >= max_live as usize {
                return Ok(SecretAdd::TooMany);
            }
            let k = key(&[domain.as_str(), &stamp(secret.created_at), &secret.id]);
            secrets.insert(k.as_str(), encode(&secret)?.as_str())?;
            Ok(SecretAdd::Added)
        })
        .await
    }

    async fn retire_push_secret(&self, domain: &DomainName, id: &str) -> StoreResult<bool> {
        let (prefix, id) = (format!("{domain}{SEP}"), id.to_owned());
        self.write(move |txn| {
            let mut secrets = txn.open_table(SECRETS)?;
            let found = scan(&secrets, &prefix, None, false)?
                .into_iter()
                .find(|(k, _)| k.ends_with(&format!("{SEP}{id}")));
            match found {
                Some((k, _)) => {
                    secrets.remove(k.as_str())?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }

    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        let address = address.clone();
        self.read(move |txn| get(&txn.open_table(ACCOUNTS)?, address.as_str()))
            .await
    }

    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        let account = account.clone();
        self.write(move |txn| {
            put_record(
                txn,
                ACCOUNTS,
                account.address.as_str(),
                &account,
                Presence::Any,
            )
            .map(drop)
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        let account = account.clone();
        self.write(move |txn| {
            put_record(
                txn,
                ACCOUNTS,
                account.address.as_str(),
                &account,
                Presence::Absent,
            )
        })
        .await
    }

    async fn update_account(&self, account: &Account) -> StoreResult<bool> {
        let account = account.clone();
        self.write(move |txn| {
            put_record(
                txn,
                ACCOUNTS,
                account.address.as_str(),
                &account,
                Presence::Present,
            )
        })
        .await
    }

    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete> {
        let address = address.clone();
        self.write(move |txn| {
            if txn
                .open_table(ACCOUNTS)?
                .remove(address.as_str())?
                .is_none()
            {
                return Ok(AccountDelete::NotFound);
            }
            let link: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            if let Some(link) = &link {
                remove_link_record(txn, link)?;
            }
            Ok(AccountDelete::Deleted {
                live_link: link.filter(Link::is_linked),
            })
        })
        .await
    }

    async fn list_accounts(
        &self,
        domain: &DomainName,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>> {
        let after = cursor_key(cursor, "")?;
        let suffix = format!("@{domain}");
        self.read(move |txn| {
            let rows: Vec<_> = scan(&txn.open_table(ACCOUNTS)?, "", after.as_deref(), false)?
                .into_iter()
                .filter(|(k, _)| k.ends_with(&suffix))
                .collect();
            let (rows, cursor) = page_of(rows, limit);
            let items = rows
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            Ok(Page { items, cursor })
        })
        .await
    }

    async fn link(&self, address: &Address) -> StoreResult<Option<Link>> {
        let address = address.clone();
        self.read(move |txn| get(&txn.open_table(LINKS)?, address.as_str()))
            .await
    }

    async fn insert_link(
        &self,
        link: &Link,
        activation: &ActivationJob,
    ) -> StoreResult<LinkInsert> {
        let (link, activation) = (link.clone(), activation.clone());
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, link.address.as_str())?;
            if let Some(current) = current.as_ref().filter(|c| c.generation >= link.generation) {
                return Ok(LinkInsert::Conflict(current.clone()));
            }
            put_link(txn, &link, current.as_ref())?;
            txn.open_table(OUTBOX)?.insert(
                activation.subscription_id.as_str(),
                encode(&activation)?.as_str(),
            )?;
            Ok(LinkInsert::Inserted)
        })
        .await
    }

    async fn unlink(
        &self,
        address: &Address,
        registration: &str,
        generation: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<Unlink> {
        let (address, registration) = (address.clone(), registration.to_owned());
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            let Some(current) = current.filter(Link::is_linked) else {
                return Ok(Unlink::NotLinked);
            };
            let older = current.generation < generation
                || (current.generation == generation && current.registration == registration);
            if !older {
                return Ok(Unlink::Newer(current));
            }
            let mut tombstone = current.clone();
            tombstone.state = LinkState::Unlinked;
            tombstone.unlinked_at = Some(at);
            tombstone.generation = generation;
            put_link(txn, &tombstone, Some(&current))?;
            Ok(Unlink::Unlinked(tombstone))
        })
        .await
    }

    async fn list_links(&self, query: &LinkQuery) -> StoreResult<Page<Link>> {
        let (table, prefix) = match &query.domain {
            Some(domain) => (LINKS_BY_DOMAIN, format!("{domain}{SEP}")),
            None => (LINKS_BY_TIME, String::new()),
        };
        let after = cursor_key(query.cursor.as_deref(), &prefix)?;
        let (activation, limit) = (query.activation, query.limit);
        self.read(move |txn| {
            let links = txn.open_table(LINKS)?;
            let mut rows = Vec::new();
            for (k, _) in scan(&txn.open_table(table)?, &prefix, after.as_deref(), true)? {
                let address = k.rsplit(SEP).next().unwrap_or_default();
                let link: Link = get(&links, address)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("index names missing link {address}"))
                })?;
                if activation.is_none_or(|a| a == link.activation) {
                    rows.push((k, encode(&link)?));
                    if rows.len() > limit {
                        break;
                    }
                }
            }
            let (rows, cursor) = page_of(rows, limit);
            let items = rows
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            Ok(Page { items, cursor })
        })
        .await
    }

    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>> {
        let address = address.clone();
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            let Some(current) = current.filter(Link::is_linked) else {
                return Ok(None);
            };
            let mut tombstone = current.clone();
            tombstone.state = LinkState::Unlinked;
            tombstone.unlinked_at = Some(at);
            put_link(txn, &tombstone, Some(&current))?;
            Ok(Some(current))
        })
        .await
    }

    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let job = job.clone();
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, job.address.as_str())?;
            let Some(current) =
                current.filter(|l| l.is_linked() && l.subscription_id == job.subscription_id)
            else {
                return Ok(false);
            };
            let mut pending = current.clone();
            pending.activation = ActivationState::Pending;
            put_link(txn, &pending, Some(&current))?;
            txn.open_table(OUTBOX)?
                .insert(job.subscription_id.as_str(), encode(&job)?.as_str())?;
            Ok(true)
        })
        .await
    }

    async fn claim_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ActivationJob>> {
        let id = subscription_id.to_owned();
        self.write(move |txn| {
            let mut outbox = txn.open_table(OUTBOX)?;
            let job: Option<ActivationJob> = get(&outbox, &id)?;
            let Some(mut job) = job.filter(|j| j.not_before <= now) else {
                return Ok(None);
            };
            job.not_before = lease_until;
            outbox.insert(id.as_str(), encode(&job)?.as_str())?;
            Ok(Some(job))
        })
        .await
    }

    async fn due_activations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ActivationJob>> {
        self.read(move |txn| {
            let mut jobs: Vec<ActivationJob> = scan(&txn.open_table(OUTBOX)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<Vec<ActivationJob>>>()?
                .into_iter()
                .filter(|job| job.not_before <= now)
                .collect();
            jobs.sort_by_key(|job| job.linked_at);
            jobs.truncate(limit);
            Ok(jobs)
        })
        .await
    }

    async fn complete_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let job = job.clone();
        self.write(move |txn| {
            txn.open_table(OUTBOX)?
                .remove(job.subscription_id.as_str())?;
            let current: Option<Link> = get(&txn.open_table(LINKS)?, job.address.as_str())?;
            let Some(current) =
                current.filter(|l| l.is_linked() && l.subscription_id == job.subscription_id)
            else {
                return Ok(false);
            };
            let mut sent = current.clone();
            sent.activation = ActivationState::Sent;
            put_link(txn, &sent, Some(&current))?;
            Ok(true)
        })
        .await
    }

    async fn discard_activation(&self, subscription_id: &str) -> StoreResult<()> {
        let id = subscription_id.to_owned();
        self.write(move |txn| {
            txn.open_table(OUTBOX)?.remove(id.as_str())?;
            Ok(())
        })
        .await
    }

    async fn defer_activation(
        &self,
        subscription_id: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let id = subscription_id.to_owned();
        self.write(move |txn| {
            let mut outbox = txn.open_table(OUTBOX)?;
            let job: Option<ActivationJob> = get(&outbox, &id)?;
            if let Some(mut job) = job {
                job.attempts += 1;
                job.not_before = retry_at;
                outbox.insert(id.as_str(), encode(&job)?.as_str())?;
            }
            Ok(())
        })
        .await
    }

    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let signature = key.to_owned();
        self.write(move |txn| {
            let mut replay = txn.open_table(REPLAY)?;
            let seen_until = replay
                .get(signature.as_str())?
                .and_then(|v| v.value().parse::<i64>().ok());
            if seen_until.is_some_and(|until| until >= now.timestamp()) {
                return Ok(false);
            }
            replay.insert(
                signature.as_str(),
                expires_at.timestamp().to_string().as_str(),
            )?;
            // Expired entries go as new ones arrive, so the guard stays the size of 10 minutes.
            let expired: Vec<String> = scan(&replay, "", None, false)?
                .into_iter()
                .filter(|(_, v)| v.parse::<i64>().is_ok_and(|until| until < now.timestamp()))
                .map(|(k, _)| k)
                .take(64)
                .collect();
            for k in expired {
                replay.remove(k.as_str())?;
            }
            Ok(true)
        })
        .await
    }

    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let k = key(&[&scope.key(), &window_start.timestamp().to_string()]);
        self.read(move |txn| {
            Ok(txn
                .open_table(FAILURES)?
                .get(k.as_str())?
                .and_then(|v| v.value().parse().ok())
                .unwrap_or(0))
        })
        .await
    }

    async fn add_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let scope_key = scope.key();
        let k = key(&[&scope_key, &window_start.timestamp().to_string()]);
        let prefix = format!("{scope_key}{SEP}");
        self.write(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            let count = failures
                .get(k.as_str())?
                .and_then(|v| v.value().parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            // Older windows of this scope no longer count.
            for (old, _) in scan(&failures, &prefix, None, false)? {
                if old != k {
                    failures.remove(old.as_str())?;
                }
            }
            failures.insert(k.as_str(), count.to_string().as_str())?;
            Ok(count)
        })
        .await
    }

    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(&[&scope.key(), &window_start.timestamp().to_string()]);
        self.write(move |txn| {
            txn.open_table(FAILURES)?.remove(k.as_str())?;
            Ok(())
        })
        .await
    }

    async fn put_token(&self, token: &AdminToken) -> StoreResult<()> {
        let token = token.clone();
        self.write(move |txn| {
            put_record(txn, TOKENS, token.id.as_str(), &token, Presence::Any).map(drop)
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>> {
        let id = id.to_owned();
        self.read(move |txn| get(&txn.open_table(TOKENS)?, &id))
            .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.read(|txn| {
            let mut tokens: Vec<AdminToken> = scan(&txn.open_table(TOKENS)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(tokens)
        })
        .await
    }

    async fn delete_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |txn| Ok(txn.open_table(TOKENS)?.remove(id.as_str())?.is_some()))
            .await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(move |txn| {
            let k = format!(
                "{}{}{SEP}{}",
                audit_prefix(entry.domain.as_ref()),
                stamp(entry.at),
                entry.id
            );
            txn.open_table(AUDIT)?
                .insert(k.as_str(), encode(&entry)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let prefix = audit_prefix(domain);
        let after = cursor_key(cursor, &prefix)?;
        self.read(move |txn| {
            let rows = scan(&txn.open_table(AUDIT)?, &prefix, after.as_deref(), true)?;
            let (rows, cursor) = page_of(rows, limit);
            let items = rows
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            Ok(Page { items, cursor })
        })
        .await
    }

    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()> {
        let mail = mail.clone();
        self.write(move |txn| {
            let k = key(&[mail.to.as_str(), &stamp(mail.at), &mail.id]);
            txn.open_table(MAIL)?
                .insert(k.as_str(), encode(&mail)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>> {
        let prefix = format!("{to}{SEP}");
        self.read(move |txn| {
            scan(&txn.open_table(MAIL)?, &prefix, None, true)?
                .iter()
                .take(limit)
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn record_heartbeat(
        &self,
        kind: &str,
        instance: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(&[kind, instance]);
        self.write(move |txn| {
            txn.open_table(HEARTBEATS)?
                .insert(k.as_str(), at.timestamp_millis().to_string().as_str())?;
            Ok(())
        })
        .await
    }

    async fn latest_heartbeat(&self, kind: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let prefix = format!("{kind}{SEP}");
        self.read(move |txn| {
            Ok(scan(&txn.open_table(HEARTBEATS)?, &prefix, None, false)?
                .iter()
                .filter_map(|(_, v)| v.parse::<i64>().ok())
                .max()
                .and_then(DateTime::from_timestamp_millis))
        })
        .await
    }
}
