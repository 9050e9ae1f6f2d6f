//! Each account with notices pending, once, in two orders: by when its oldest notice is due
//! (index `gsi2`, partition `DUE#notice`) and by when that notice's mail arrived (`gsi1`,
//! partition `WAITING#notice`). Both are index keys of one queue item per account
//! (`ACCOUNT#<address>`/`NOTICEQUEUE`), so a dispatcher pass reads the due accounts alone; before,
//! a pass read the `NOTICE` partition in account order, and one account with a batch of notices
//! waiting for its callback hid every account after it.
//!
//! The writes that change an account's notices keep its queue item safe, never later than its
//! oldest notice is due: a delivery adds the account if it was not there (an older notice keeps
//! its place), a take makes it due at once (what comes next is not known there), a deferral
//! moves it to the retry (`queue_due`). Each raises `version`. When the dispatcher is done with
//! the account, [`DynamoStore::settle_queue`] reads its oldest notice and puts the item exactly
//! where that notice says (or removes it), on the condition that `version` has not moved.

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use pushmail_core::notice::Notice;

use super::*;

const QUEUE_SK: &str = "NOTICEQUEUE";
const DUE_PARTITION: &str = "DUE#notice";
const WAITING_PARTITION: &str = "WAITING#notice";
/// The mark of this module's backfill (notices kept before the queue items existed).
const NOTICE_ORDER_MARK: &str = "NOTICE_ORDER";
/// Tries of a settle whose condition keeps failing; then the item is left as the racing
/// writes put it, which is never later than the account's oldest notice is due.
const SETTLE_TRIES: usize = 3;

fn order_key(at: DateTime<Utc>, account: &Address) -> String {
    timed_index_key(at, account.as_str())
}

impl DynamoStore {
    fn queue_update(&self, account: &Address, expression: &str) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(QUEUE_SK))
            .update_expression(expression)
            .expression_attribute_values(":account", s(account.as_str()))
            .expression_attribute_values(":due_pk", s(DUE_PARTITION))
            .expression_attribute_values(":one", n(1))
    }

    /// For a delivery's transaction that records `first` (its oldest notice, if it records
    /// several): the account joins both orders if it was in neither; if it was, its older
    /// notice keeps the place.
    pub(super) fn queue_recorded(&self, first: &Notice) -> StoreResult<TransactWriteItem> {
        update_write(
            self.queue_update(
                &first.email,
                "SET account = :account, gsi2pk = :due_pk, \
                 gsi2sk = if_not_exists(gsi2sk, :due), gsi1pk = :waiting_pk, \
                 gsi1sk = if_not_exists(gsi1sk, :arrived) ADD version :one",
            )
            .expression_attribute_values(":due", s(order_key(first.not_before, &first.email)))
            .expression_attribute_values(":waiting_pk", s(WAITING_PARTITION))
            .expression_attribute_values(":arrived", s(order_key(first.received, &first.email))),
        )
    }

    /// For the transaction that changes the account's oldest notice, `notice`: a take
    /// (delivered or dropped) at `due`, as the account's next notice is not known there (due at
    /// once, until settled), or a deferral to `due`, its retry.
    pub(super) fn queue_due(
        &self,
        notice: &Notice,
        due: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        update_write(
            self.queue_update(
                &notice.email,
                "SET account = :account, gsi2pk = :due_pk, gsi2sk = :due ADD version :one",
            )
            .expression_attribute_values(":due", s(order_key(due, &notice.email))),
        )
    }

    /// Puts the account where its oldest pending notice says in both orders, or takes it out
    /// with none pending; unless a write to its notices came between (then again, or left to
    /// what that write did).
    pub(super) async fn settle_queue(&self, account: &Address) -> StoreResult<()> {
        let pk = account_pk(account);
        for _ in 0..SETTLE_TRIES {
            // The item before the notices: a write after this read raises `version`.
            let item = self.get(pk.clone(), QUEUE_SK).await?;
            let version = item
                .as_ref()
                .map(|item| get_n::<u64>(item, "version"))
                .transpose()?;
            let oldest = self.account_oldest_notice(account).await?;
            let keys = oldest.as_ref().map(|notice| {
                (
                    order_key(notice.not_before, account),
                    order_key(notice.received, account),
                )
            });
            let placed = item.as_ref().map(|item| {
                (
                    get_opt_s(item, "gsi2sk").unwrap_or_default(),
                    get_opt_s(item, "gsi1sk").unwrap_or_default(),
                )
            });
            if keys == placed {
                return Ok(());
            }
            if self.place_queue(account, version, keys).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes the account's queue item as `keys` (due, arrived) say, or deletes it with `None`,
    /// if its `version` is still `version` (`None`: no item). False when that condition failed.
    async fn place_queue(
        &self,
        account: &Address,
        version: Option<u64>,
        keys: Option<(String, String)>,
    ) -> StoreResult<bool> {
        let mut values = HashMap::new();
        let condition = match version {
            Some(version) => {
                values.insert(":version".to_owned(), n(version));
                "version = :version"
            }
            None => "attribute_not_exists(pk)",
        };
        let key = HashMap::from([
            ("pk".to_owned(), s(account_pk(account))),
            ("sk".to_owned(), s(QUEUE_SK)),
        ]);
        let placed = match keys {
            Some((due, arrived)) => {
                values.extend([
                    (":account".to_owned(), s(account.as_str())),
                    (":due_pk".to_owned(), s(DUE_PARTITION)),
                    (":due".to_owned(), s(due)),
                    (":waiting_pk".to_owned(), s(WAITING_PARTITION)),
                    (":arrived".to_owned(), s(arrived)),
                    (":zero".to_owned(), n(0)),
                ]);
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(
                        "SET account = :account, gsi2pk = :due_pk, gsi2sk = :due, \
                         gsi1pk = :waiting_pk, gsi1sk = :arrived, \
                         version = if_not_exists(version, :zero)",
                    )
                    .condition_expression(condition)
                    .set_expression_attribute_values(Some(values))
                    .send()
                    .await;
                unless_condition_failed(result)?.is_some()
            }
            None => {
                let result = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression(condition)
                    .set_expression_attribute_values((!values.is_empty()).then_some(values))
                    .send()
                    .await;
                unless_condition_failed(result)?.is_some()
            }
        };
        Ok(placed)
    }

    /// The accounts whose oldest notice is due at `now`, the longest due first, at most `limit`
    /// (an index read: a queue item written a moment ago may not be seen yet; the dispatcher
    /// also hears of fresh notices from the delivery that recorded them).
    pub(super) async fn due_accounts(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<Address>> {
        self.backfill_queues().await?;
        self.due_in_order(DUE_PARTITION, now, limit, |item| {
            get_parsed(item, "account", Address::parse)
        })
        .await
    }

    /// When the mail of the longest waiting notice arrived, over all accounts' oldest.
    pub(super) async fn oldest_waiting(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.backfill_queues().await?;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(WAITING_PARTITION))
            .limit(1)
            .send()
            .await
            .map_err(backend)?;
        let Some(item) = output.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let key = get_s(&item, "gsi1sk")?;
        timed_index_time(key)
            .map(Some)
            .ok_or_else(|| corrupt(&item, "gsi1sk"))
    }

    /// Gives the notices kept by a version without the orders their accounts' queue items, once
    /// a table and once a process.
    async fn backfill_queues(&self) -> StoreResult<()> {
        self.once_a_table(&self.notice_order_backfilled, NOTICE_ORDER_MARK, || async {
            let mut accounts: Vec<Address> = Vec::new();
            each_item(
                self.partition_query(super::notices::NOTICE_PK, None)
                    .projection_expression("sk")
                    .consistent_read(true),
                |item| {
                    let sk = get_s(&item, "sk")?;
                    let account = sk
                        .split_once('\u{1}')
                        .and_then(|(account, _)| Address::parse(account).ok())
                        .ok_or_else(|| corrupt(&item, "sk"))?;
                    if accounts.last() != Some(&account) {
                        accounts.push(account);
                    }
                    Ok(true)
                },
            )
            .await?;
            for account in &accounts {
                self.settle_queue(account).await?;
            }
            Ok(())
        })
        .await
    }
}
