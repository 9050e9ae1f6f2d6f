//! New-mail notices: recorded inside a delivery's write transaction, each later change one
//! write transaction of its own.

use pushmail_core::notice::Notice;
use redb::{ReadableTableMetadata, TableDefinition};
use serde::Deserialize;

use super::*;
use crate::notices::{AccountNotices, NoticeCounts, NoticeDrop, NoticeFailure};

/// `<account> SEP <seq, 20 digits>` → notice: one account's in order.
const NOTICES: Records = TableDefinition::new("notices");
/// `<account>` → its last delivery and failure.
const NOTICE_STATUS: Records = TableDefinition::new("notice_status");
/// A counter's name → its value.
const NOTICE_COUNTS: Records = TableDefinition::new("notice_counts");
/// `<due, unix ms, 20 digits> SEP <account>` → "": each account with notices pending, once,
/// by when its oldest is due. A pass reads the due accounts alone; without it a pass read the
/// notices in account order, so one account with a batch of them waiting for its callback
/// hid every account after it.
const NOTICE_DUE: Records = TableDefinition::new("notice_due");
/// `<arrived, unix ms, 20 digits> SEP <account>` → "": the same accounts by when the mail of
/// their oldest notice arrived (the backlog gauge reads the first).
const NOTICE_WAITING: Records = TableDefinition::new("notice_waiting");
/// `<account>` → its [`QueueHead`]: where it stands in the two orders above.
const NOTICE_HEADS: Records = TableDefinition::new("notice_heads");

/// An account's oldest pending notice, as the orders know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct QueueHead {
    /// When it is due (unix ms).
    due: i64,
    /// When its mail arrived (unix ms).
    arrived: i64,
}

impl QueueHead {
    fn of(notice: &Notice) -> Self {
        Self {
            due: notice.not_before.timestamp_millis(),
            arrived: notice.received.timestamp_millis(),
        }
    }
}

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    for table in [
        NOTICES,
        NOTICE_STATUS,
        NOTICE_COUNTS,
        NOTICE_DUE,
        NOTICE_WAITING,
    ] {
        txn.open_table(table)?;
    }
    // Notices kept by a version without the orders get them once.
    if txn.open_table(NOTICE_HEADS)?.is_empty()? && !txn.open_table(NOTICES)?.is_empty()? {
        let mut accounts = Vec::new();
        for entry in txn.open_table(NOTICES)?.iter()? {
            let notice: Notice = decode(entry?.1.value())?;
            if accounts.last() != Some(&notice.email) {
                accounts.push(notice.email);
            }
        }
        for account in &accounts {
            settle(txn, account)?;
        }
    }
    Ok(())
}

/// Puts `account` where its oldest pending notice now places it in the due and waiting orders
/// (or takes it out, with none pending): after every change to its notices, in the same
/// transaction, so the orders are always exact.
fn settle(txn: &WriteTransaction, account: &Address) -> TxResult<()> {
    let prefix = key(&[account.as_str(), ""]);
    let oldest: Option<Notice> = first_decoded(&txn.open_table(NOTICES)?, &prefix, false, 1)?
        .into_iter()
        .next();
    let now = oldest.as_ref().map(QueueHead::of);
    let mut heads = txn.open_table(NOTICE_HEADS)?;
    let before: Option<QueueHead> = get(&heads, account.as_str())?;
    if before == now {
        return Ok(());
    }
    let (mut due, mut waiting) = (txn.open_table(NOTICE_DUE)?, txn.open_table(NOTICE_WAITING)?);
    if let Some(before) = before {
        due.remove(timed_key(before.due, account.as_str()).as_str())?;
        waiting.remove(timed_key(before.arrived, account.as_str()).as_str())?;
    }
    match now {
        Some(now) => {
            due.insert(timed_key(now.due, account.as_str()).as_str(), "")?;
            waiting.insert(timed_key(now.arrived, account.as_str()).as_str(), "")?;
            heads.insert(account.as_str(), encode(&now)?.as_str())?;
        }
        None => {
            heads.remove(account.as_str())?;
        }
    }
    Ok(())
}

fn notice_key(notice: &Notice) -> String {
    key(&[notice.email.as_str(), &format!("{:020}", notice.seq)])
}

/// Up to `budget` of an account's notices, taken off the budget, and its notice status once
/// they are all gone, in the caller's transaction (a step of its purge); its place in the
/// queue's orders kept true either way.
pub(super) fn purge(txn: &WriteTransaction, account: &Address, budget: &mut usize) -> TxResult<()> {
    let prefix = key(&[account.as_str(), ""]);
    super::mailbox::remove_prefixed(&mut txn.open_table(NOTICES)?, &prefix, budget)?;
    if *budget > 0 {
        txn.open_table(NOTICE_STATUS)?.remove(account.as_str())?;
    }
    settle(txn, account)
}

/// Records a notice in the caller's transaction (a delivery's).
pub(super) fn record(txn: &WriteTransaction, notice: &Notice) -> TxResult<()> {
    txn.open_table(NOTICES)?
        .insert(notice_key(notice).as_str(), encode(notice)?.as_str())?;
    settle(txn, &notice.email)
}

fn count(txn: &WriteTransaction, name: &str) -> TxResult<()> {
    let mut counts = txn.open_table(NOTICE_COUNTS)?;
    let value: u64 = get(&counts, name)?.unwrap_or(0);
    counts.insert(name, encode(&(value + 1))?.as_str())?;
    Ok(())
}

fn update_status(
    txn: &WriteTransaction,
    account: &Address,
    change: impl FnOnce(&mut AccountNotices),
) -> TxResult<()> {
    let mut statuses = txn.open_table(NOTICE_STATUS)?;
    let mut status: AccountNotices = get(&statuses, account.as_str())?.unwrap_or_default();
    change(&mut status);
    statuses.insert(account.as_str(), encode(&status)?.as_str())?;
    Ok(())
}

/// Takes a notice out if it is still there; false if another worker already did.
fn take(txn: &WriteTransaction, notice: &Notice) -> TxResult<bool> {
    let taken = txn
        .open_table(NOTICES)?
        .remove(notice_key(notice).as_str())?
        .is_some();
    settle(txn, &notice.email)?;
    Ok(taken)
}

/// The account in a key of [`NOTICE_DUE`] or [`NOTICE_WAITING`], and the time before it.
fn timed_account(key: &str) -> TxResult<(i64, Address)> {
    key.split_once(SEP)
        .and_then(|(at, account)| Some((at.parse().ok()?, Address::parse(account).ok()?)))
        .ok_or_else(|| StoreError::Corrupt(format!("notice order key {key:?}")).into())
}

#[async_trait]
impl crate::NoticeStore for EmbeddedStore {
    async fn due_notice_accounts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Address>> {
        // Up to and with accounts due at `now` itself: before every key of the next millisecond.
        let end = timed_key(now.timestamp_millis().saturating_add(1), "");
        self.read(move |txn| {
            let due = txn.open_table(NOTICE_DUE)?;
            let mut accounts = Vec::new();
            for entry in due.range::<&str>(..end.as_str())?.take(limit) {
                accounts.push(timed_account(entry?.0.value())?.1);
            }
            Ok(accounts)
        })
        .await
    }

    async fn oldest_waiting_notice(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.read(move |txn| {
            let waiting = txn.open_table(NOTICE_WAITING)?;
            let Some(entry) = waiting.first()? else {
                return Ok(None);
            };
            let (arrived, _) = timed_account(entry.0.value())?;
            Ok(DateTime::from_timestamp_millis(arrived))
        })
        .await
    }

    async fn account_pending_notices(
        &self,
        account: &Address,
        limit: usize,
    ) -> StoreResult<Vec<Notice>> {
        let prefix = key(&[account.as_str(), ""]);
        // Only as many as asked: an account whose callback is down keeps a day of them.
        self.read(move |txn| first_decoded(&txn.open_table(NOTICES)?, &prefix, false, limit))
            .await
    }

    async fn lease_notice(
        &self,
        notice: &Notice,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let key = notice_key(notice);
        self.write(move |txn| {
            let mut notices = txn.open_table(NOTICES)?;
            let stored: Option<Notice> = get(&notices, &key)?;
            let Some(mut stored) = stored.filter(|n| n.not_before <= now) else {
                return Ok(false);
            };
            stored.not_before = lease_until;
            notices.insert(key.as_str(), encode(&stored)?.as_str())?;
            drop(notices);
            settle(txn, &stored.email)?;
            Ok(true)
        })
        .await
    }

    async fn notice_delivered(&self, notice: &Notice, at: DateTime<Utc>) -> StoreResult<()> {
        let notice = notice.clone();
        self.write(move |txn| {
            if take(txn, &notice)? {
                count(txn, "delivered")?;
                update_status(txn, &notice.email, |status| {
                    status.last_delivered_at = Some(at);
                })?;
            }
            Ok(())
        })
        .await
    }

    async fn notice_failed(
        &self,
        notice: &Notice,
        retry_at: DateTime<Utc>,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (notice, error) = (notice.clone(), error.to_owned());
        self.write(move |txn| {
            let mut notices = txn.open_table(NOTICES)?;
            let key = notice_key(&notice);
            let stored: Option<Notice> = get(&notices, &key)?;
            let Some(mut stored) = stored else {
                return Ok(());
            };
            stored.attempts += 1;
            stored.not_before = retry_at;
            notices.insert(key.as_str(), encode(&stored)?.as_str())?;
            drop(notices);
            settle(txn, &notice.email)?;
            count(txn, "failed_attempts")?;
            update_status(txn, &notice.email, |status| {
                status.last_failure = Some(NoticeFailure {
                    at,
                    error: error.clone(),
                });
            })
        })
        .await
    }

    async fn drop_notice(&self, notice: &Notice, why: NoticeDrop) -> StoreResult<()> {
        let notice = notice.clone();
        self.write(move |txn| {
            if take(txn, &notice)? {
                count(
                    txn,
                    match why {
                        NoticeDrop::Stale => "dropped_stale",
                        NoticeDrop::Expired => "dropped_expired",
                    },
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn account_notices(&self, account: &Address) -> StoreResult<AccountNotices> {
        let account = account.clone();
        self.read(move |txn| {
            let mut status: AccountNotices =
                get(&txn.open_table(NOTICE_STATUS)?, account.as_str())?.unwrap_or_default();
            let prefix = key(&[account.as_str(), ""]);
            // Counted, not collected: a day of notices can wait behind a dead callback.
            let mut pending = 0;
            visit(&txn.open_table(NOTICES)?, &prefix, None, false, |_, _| {
                pending += 1;
                Ok(true)
            })?;
            status.pending = pending;
            Ok(status)
        })
        .await
    }

    async fn notice_counts(&self) -> StoreResult<NoticeCounts> {
        self.read(move |txn| {
            let counts = txn.open_table(NOTICE_COUNTS)?;
            let value = |name: &str| -> TxResult<u64> { Ok(get(&counts, name)?.unwrap_or(0)) };
            Ok(NoticeCounts {
                pending: txn.open_table(NOTICES)?.len()?,
                delivered: value("delivered")?,
                failed_attempts: value("failed_attempts")?,
                dropped_stale: value("dropped_stale")?,
                dropped_expired: value("dropped_expired")?,
            })
        })
        .await
    }
}
