//! New-mail notices: recorded inside a delivery's write transaction, each later change one
//! write transaction of its own.

use pushmail_core::notice::Notice;
use redb::{ReadableTableMetadata, TableDefinition};

use super::*;
use crate::notices::{AccountNotices, NoticeCounts, NoticeDrop, NoticeFailure};

/// `<account> SEP <seq, 20 digits>` → notice: one account's in order.
const NOTICES: Records = TableDefinition::new("notices");
/// `<account>` → its last delivery and failure.
const NOTICE_STATUS: Records = TableDefinition::new("notice_status");
/// A counter's name → its value.
const NOTICE_COUNTS: Records = TableDefinition::new("notice_counts");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    for table in [NOTICES, NOTICE_STATUS, NOTICE_COUNTS] {
        txn.open_table(table)?;
    }
    Ok(())
}

fn notice_key(notice: &Notice) -> String {
    key(&[notice.email.as_str(), &format!("{:020}", notice.seq)])
}

/// An account's notices and notice status, in the caller's transaction (its deletion).
pub(super) fn purge(txn: &WriteTransaction, account: &Address) -> TxResult<()> {
    super::mailbox::remove_prefixed(&mut txn.open_table(NOTICES)?, &key(&[account.as_str(), ""]))?;
    txn.open_table(NOTICE_STATUS)?.remove(account.as_str())?;
    Ok(())
}

/// Records a notice in the caller's transaction (a delivery's).
pub(super) fn record(txn: &WriteTransaction, notice: &Notice) -> TxResult<()> {
    txn.open_table(NOTICES)?
        .insert(notice_key(notice).as_str(), encode(notice)?.as_str())?;
    Ok(())
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
    Ok(txn
        .open_table(NOTICES)?
        .remove(notice_key(notice).as_str())?
        .is_some())
}

#[async_trait]
impl crate::NoticeStore for EmbeddedStore {
    async fn pending_notices(&self, limit: usize) -> StoreResult<Vec<Notice>> {
        self.read(move |txn| {
            let table = txn.open_table(NOTICES)?;
            let mut notices = Vec::new();
            for entry in table.iter()?.take(limit) {
                notices.push(decode(entry?.1.value())?);
            }
            Ok(notices)
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
            status.pending = scan(&txn.open_table(NOTICES)?, &prefix, None, false)?.len() as u64;
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
