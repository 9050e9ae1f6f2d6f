//! New-mail notices: one item each under the `NOTICE` partition, sorted by account and then by
//! the account's change counter (so one query reads them grouped and in order); the notice as
//! JSON in `notice`. Per account, its last delivery and failure in `ACCOUNT#a`/`NOTICESTATUS`;
//! server-wide counters in `NOTICE_COUNTS`/`COUNTS`, raised with ADD in the same transaction as
//! the change they count.

use aws_sdk_dynamodb::types::Select;
use pushmail_core::notice::Notice;

use super::*;
use crate::notices::{AccountNotices, NoticeCounts, NoticeDrop, NoticeFailure};

pub(super) const NOTICE_PK: &str = "NOTICE";
const COUNTS_PK: &str = "NOTICE_COUNTS";
const STATUS_SK: &str = "NOTICESTATUS";

/// U+0001 ends the address: no address contains it, so one account's notices stay together.
fn notice_sk(account: &Address, seq: u64) -> String {
    format!("{account}\u{1}{seq:020}")
}

fn notice_key(notice: &Notice) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), s(NOTICE_PK)),
        ("sk".into(), s(notice_sk(&notice.email, notice.seq))),
    ])
}

fn encode(notice: &Notice) -> StoreResult<AttributeValue> {
    serde_json::to_string(notice)
        .map(s)
        .map_err(|e| StoreError::Corrupt(format!("notice: {e}")))
}

/// The notice; its due time is the item's own `not_before` (which a lease moves).
fn notice_from(item: &Item) -> StoreResult<Notice> {
    let mut notice: Notice =
        serde_json::from_str(get_s(item, "notice")?).map_err(|_| corrupt(item, "notice"))?;
    if item.contains_key("not_before") {
        notice.not_before = get_millis(item, "not_before")?;
    }
    Ok(notice)
}

/// The notice's item, for a delivery's transaction.
pub(super) fn record(
    table: &str,
    notice: &Notice,
) -> StoreResult<aws_sdk_dynamodb::types::builders::PutBuilder> {
    Ok(Put::builder()
        .table_name(table)
        .item("pk", s(NOTICE_PK))
        .item("sk", s(notice_sk(&notice.email, notice.seq)))
        .item("notice", encode(notice)?)
        .item("not_before", n(notice.not_before.timestamp_millis()))
        .condition_expression("attribute_not_exists(pk)"))
}

impl DynamoStore {
    fn count(&self, name: &str) -> StoreResult<TransactWriteItem> {
        update_write(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(COUNTS_PK))
                .key("sk", s("COUNTS"))
                .update_expression("ADD #counter :one")
                .expression_attribute_names("#counter", name)
                .expression_attribute_values(":one", n(1)),
        )
    }

    fn take(&self, notice: &Notice) -> StoreResult<TransactWriteItem> {
        delete_write(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(notice_key(notice)))
                .condition_expression("attribute_exists(pk)"),
        )
    }

    /// The account's oldest pending notice.
    pub(super) async fn account_oldest_notice(
        &self,
        account: &Address,
    ) -> StoreResult<Option<Notice>> {
        Ok(self
            .query_notices(&format!("{account}\u{1}"), 1)
            .await?
            .pop())
    }

    /// Pending notices of one account (keys with `prefix`), in key order, at most `limit`.
    async fn query_notices(&self, prefix: &str, limit: usize) -> StoreResult<Vec<Notice>> {
        let mut notices = Vec::new();
        let query = self
            .partition_query(NOTICE_PK, Some(prefix))
            .consistent_read(true);
        each_item(query, |item| {
            notices.push(notice_from(&item)?);
            Ok(notices.len() < limit)
        })
        .await?;
        notices.truncate(limit);
        Ok(notices)
    }

    /// How many items a query finds (paged, counting only).
    async fn count_items(&self, pk: &str, prefix: Option<&str>) -> StoreResult<u64> {
        let query = self.partition_query(pk, prefix).select(Select::Count);
        let mut total = 0;
        each_page(query, |page| {
            total += page.count.max(0) as u64;
            Ok(true)
        })
        .await?;
        Ok(total)
    }
}

#[async_trait]
impl crate::NoticeStore for DynamoStore {
    async fn due_notice_accounts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Address>> {
        self.due_accounts(now, limit).await
    }

    async fn oldest_waiting_notice(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.oldest_waiting().await
    }

    async fn settle_notice_queue(&self, account: &Address) -> StoreResult<()> {
        self.settle_queue(account).await
    }

    async fn account_pending_notices(
        &self,
        account: &Address,
        limit: usize,
    ) -> StoreResult<Vec<Notice>> {
        self.query_notices(&format!("{account}\u{1}"), limit).await
    }

    async fn lease_notice(
        &self,
        notice: &Notice,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(self
            .lease(notice_key(notice), now, lease_until)
            .await?
            .is_some())
    }

    async fn notice_delivered(&self, notice: &Notice, at: DateTime<Utc>) -> StoreResult<()> {
        let status = update_write(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(account_pk(&notice.email)))
                .key("sk", s(STATUS_SK))
                .update_expression("SET last_delivered_at = :at")
                .expression_attribute_values(":at", time(at)),
        )?;
        // Cancelled: another worker took it first; nothing to record twice.
        let queue = self.queue_due(notice, at)?;
        self.transact(vec![
            self.take(notice)?,
            status,
            self.count("delivered")?,
            queue,
        ])
        .await
        .map(|_| ())
    }

    async fn notice_failed(
        &self,
        notice: &Notice,
        retry_at: DateTime<Utc>,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut retried = notice.clone();
        retried.attempts += 1;
        retried.not_before = retry_at;
        let keep = update_write(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(notice_key(notice)))
                .update_expression("SET notice = :notice, not_before = :retry")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":notice", encode(&retried)?)
                .expression_attribute_values(":retry", n(retry_at.timestamp_millis())),
        )?;
        let status = update_write(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(account_pk(&notice.email)))
                .key("sk", s(STATUS_SK))
                .update_expression("SET last_failure_at = :at, last_failure = :error")
                .expression_attribute_values(":at", time(at))
                .expression_attribute_values(":error", s(error)),
        )?;
        let queue = self.queue_due(notice, retry_at)?;
        self.transact(vec![keep, status, self.count("failed_attempts")?, queue])
            .await
            .map(|_| ())
    }

    async fn drop_notice(&self, notice: &Notice, why: NoticeDrop) -> StoreResult<()> {
        let counter = match why {
            NoticeDrop::Stale => "dropped_stale",
            NoticeDrop::Expired => "dropped_expired",
        };
        let queue = self.queue_due(notice, Utc::now())?;
        self.transact(vec![self.take(notice)?, self.count(counter)?, queue])
            .await
            .map(|_| ())
    }

    async fn account_notices(&self, account: &Address) -> StoreResult<AccountNotices> {
        let item = self
            .get(account_pk(account), STATUS_SK)
            .await?
            .unwrap_or_default();
        let last_failure = match (
            item.get("last_failure_at"),
            get_opt_s(&item, "last_failure"),
        ) {
            (Some(_), Some(error)) => Some(NoticeFailure {
                at: get_time(&item, "last_failure_at")?,
                error,
            }),
            _ => None,
        };
        Ok(AccountNotices {
            last_delivered_at: match item.get("last_delivered_at") {
                Some(_) => Some(get_time(&item, "last_delivered_at")?),
                None => None,
            },
            last_failure,
            pending: self
                .count_items(NOTICE_PK, Some(&format!("{account}\u{1}")))
                .await?,
        })
    }

    async fn notice_counts(&self) -> StoreResult<NoticeCounts> {
        let item = self
            .get(COUNTS_PK.to_owned(), "COUNTS")
            .await?
            .unwrap_or_default();
        let value = |name: &str| -> StoreResult<u64> {
            match item.get(name) {
                Some(_) => get_n(&item, name),
                None => Ok(0),
            }
        };
        Ok(NoticeCounts {
            pending: self.count_items(NOTICE_PK, None).await?,
            delivered: value("delivered")?,
            failed_attempts: value("failed_attempts")?,
            dropped_stale: value("dropped_stale")?,
            dropped_expired: value("dropped_expired")?,
        })
    }
}
