//! The queues whose items fall due (the relay queue and the activation outbox). Each item keeps
//! its due time twice: `not_before` (N), for the condition that leases it to one worker, and its
//! place in the queue's due order on index `gsi2` (`gsi2pk = DUE#<queue>`, `gsi2sk = <not_before,
//! 20 digits>#<sk>`), so a pass queries the due items alone. Before, a pass read the queue's
//! whole partition through a filter: every waiting item on every pass, and the relay worker
//! passes each time mail is queued, so a backlog behind a slow relay cost each new message a read
//! of the whole backlog.

use tokio::sync::OnceCell;

use super::*;

/// The partition of the items that mark a table's one-time backfills done.
const BACKFILLS_PK: &str = "QUEUES";
/// The mark of this module's backfill (items queued before the due order existed).
const DUE_ORDER_MARK: &str = "DUE_ORDER";
/// The queue partitions with a due order.
const QUEUES: [&str; 2] = [RELAY_PK, OUTBOX_ACTIVATION];

/// The index partition of a queue partition's due order; `None`: not such a queue (a notice,
/// leased alike, is placed by its account's queue item instead).
fn due_partition(pk: &str) -> Option<&'static str> {
    match pk {
        RELAY_PK => Some("DUE#relay"),
        OUTBOX_ACTIVATION => Some("DUE#activation"),
        _ => None,
    }
}

/// The index attributes that place queue item `pk`/`sk` at `due` in its queue's order (none for
/// an item of another partition).
pub(super) fn due_attributes(
    pk: &str,
    sk: &str,
    due: DateTime<Utc>,
) -> Vec<(String, AttributeValue)> {
    due_partition(pk)
        .map(|partition| {
            vec![
                ("gsi2pk".to_owned(), s(partition)),
                ("gsi2sk".to_owned(), s(timed_index_key(due, sk))),
            ]
        })
        .unwrap_or_default()
}

/// `SET` clauses and values that move queue item `pk`/`sk` to `due` (empty for another item).
fn due_update(pk: &str, sk: &str, due: DateTime<Utc>) -> (String, Vec<(String, AttributeValue)>) {
    let attributes = due_attributes(pk, sk, due);
    let clauses = attributes
        .iter()
        .map(|(name, _)| format!(", {name} = :{name}"))
        .collect();
    let values = attributes
        .into_iter()
        .map(|(name, value)| (format!(":{name}"), value))
        .collect();
    (clauses, values)
}

fn key_part<'a>(key: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    key.get(name)
        .and_then(|value| value.as_s().ok())
        .map_or("", String::as_str)
}

impl DynamoStore {
    /// Takes a queue item (or a notice) until `lease_until` if it is due at `now` (`not_before`
    /// at or before it): one conditional write, so of racing workers exactly one gets it. The
    /// item as it is now, or `None` if it is gone or held.
    pub(super) async fn lease(
        &self,
        key: HashMap<String, AttributeValue>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Item>> {
        let (clauses, values) = due_update(key_part(&key, "pk"), key_part(&key, "sk"), lease_until);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET not_before = :lease{clauses}"))
            .condition_expression("attribute_exists(pk) AND not_before <= :now")
            .set_expression_attribute_values(Some(
                values
                    .into_iter()
                    .chain([
                        (":lease".to_owned(), n(lease_until.timestamp_millis())),
                        (":now".to_owned(), n(now.timestamp_millis())),
                    ])
                    .collect(),
            ))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        Ok(unless_condition_failed(result)?.map(|output| output.attributes.unwrap_or_default()))
    }

    /// Moves queue item `pk`/`sk` to `retry_at`, with the caller's further `set` clauses (each
    /// after ", ") and `add` clause (or ""), their values in `values`; if it is still there (a
    /// finished job stays finished).
    pub(super) async fn defer_item(
        &self,
        (pk, sk): (&str, &str),
        retry_at: DateTime<Utc>,
        set: &str,
        add: &str,
        values: Vec<(String, AttributeValue)>,
    ) -> StoreResult<()> {
        let (clauses, due_values) = due_update(pk, sk, retry_at);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(format!("SET not_before = :retry{clauses}{set} {add}"))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(
                values
                    .into_iter()
                    .chain(due_values)
                    .chain([(":retry".to_owned(), n(retry_at.timestamp_millis()))])
                    .collect(),
            ))
            .send()
            .await;
        unless_condition_failed(result).map(drop)
    }

    /// The items of a queue partition due at `now`, the longest due first, each read with
    /// `decode`: at most `limit`. An index read: an item leased a moment ago may still show
    /// (the lease's condition decides), one queued a moment ago may not yet.
    pub(super) async fn due_items<T>(
        &self,
        pk: &str,
        now: DateTime<Utc>,
        limit: usize,
        decode: impl Fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let Some(partition) = due_partition(pk) else {
            return Ok(Vec::new());
        };
        self.once_a_table(&self.due_order_backfilled, DUE_ORDER_MARK, || {
            self.backfill_due_order()
        })
        .await?;
        self.due_in_order(partition, now, limit, decode).await
    }

    /// The items of a due order (`gsi2` partition `partition`, keyed by [`timed_index_key`])
    /// due at `now`, the longest due first, each read with `decode`: at most `limit`.
    pub(super) async fn due_in_order<T>(
        &self,
        partition: &str,
        now: DateTime<Utc>,
        limit: usize,
        decode: impl Fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut due = Vec::new();
        if limit == 0 {
            return Ok(due);
        }
        // Up to and with items due at `now` itself: before every key of the next millisecond.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :pk AND gsi2sk < :end")
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":end", s(timed_index_end(now)))
            .limit(i32::try_from(limit.min(1000)).unwrap_or(1000));
        each_item(query, |item| {
            due.push(decode(&item)?);
            Ok(due.len() < limit)
        })
        .await?;
        Ok(due)
    }

    /// Runs `backfill` once for the table (the item `QUEUES`/`mark` records that it ran) and
    /// once a process (`cell`): the one-time work of giving items kept by an earlier version
    /// the index keys a newer one reads.
    pub(super) async fn once_a_table<F, Fut>(
        &self,
        cell: &OnceCell<()>,
        mark: &str,
        backfill: F,
    ) -> StoreResult<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = StoreResult<()>>,
    {
        cell.get_or_try_init(|| async {
            if self.get(BACKFILLS_PK.to_owned(), mark).await?.is_some() {
                return Ok(());
            }
            backfill().await?;
            self.put(HashMap::from([
                ("pk".to_owned(), s(BACKFILLS_PK)),
                ("sk".to_owned(), s(mark)),
            ]))
            .await
        })
        .await
        .map(|_| ())
    }

    /// Places every queue item without a place in the due order (queued by an earlier version).
    async fn backfill_due_order(&self) -> StoreResult<()> {
        for pk in QUEUES {
            let mut unplaced = Vec::new();
            each_item(
                self.partition_query(pk, None)
                    .filter_expression("attribute_not_exists(gsi2pk)")
                    .projection_expression("sk, not_before")
                    .consistent_read(true),
                |item| {
                    unplaced.push((
                        get_s(&item, "sk")?.to_owned(),
                        get_millis(&item, "not_before")?,
                    ));
                    Ok(true)
                },
            )
            .await?;
            for (sk, due) in unplaced {
                let (clauses, values) = due_update(pk, &sk, due);
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(&sk))
                    .update_expression(format!("SET {}", clauses.trim_start_matches(", ")))
                    // A worker that leased it meanwhile placed it already.
                    .condition_expression("attribute_exists(pk) AND attribute_not_exists(gsi2pk)")
                    .set_expression_attribute_values(Some(values.into_iter().collect()))
                    .send()
                    .await;
                unless_condition_failed(result)?;
            }
        }
        Ok(())
    }
}
