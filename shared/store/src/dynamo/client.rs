//! The DynamoDB client's ways of writing: one transaction, a get, a put (conditional or not),
//! the retry of an operation a concurrent writer raced, and the two refusals a condition gives.

use super::*;

/// How many times an atomic operation is retried when a concurrent writer changed the item
/// between its conditional write and the read that explains the refusal.
pub(super) const RACE_RETRIES: usize = 8;

/// How one try of a contended operation ended.
pub(super) enum Attempt<T> {
    Done(T),
    /// A concurrent writer changed the item between the refused write and the read that
    /// explains the refusal: try again.
    Raced,
}

/// Runs `attempt` until it is done, at most [`RACE_RETRIES`] times; `what` names the item
/// fought over, for the error.
pub(super) async fn contended<T, Fut>(
    what: &str,
    mut attempt: impl FnMut() -> Fut,
) -> StoreResult<T>
where
    Fut: std::future::Future<Output = StoreResult<Attempt<T>>>,
{
    for _ in 0..RACE_RETRIES {
        if let Attempt::Done(value) = attempt().await? {
            return Ok(value);
        }
    }
    Err(StoreError::Backend(format!(
        "too much contention on {what}"
    )))
}

/// One write of a transaction, from its builder.
pub(super) fn put_write(put: PutBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .put(build(put.build())?)
        .build())
}

pub(super) fn update_write(update: UpdateBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(build(update.build())?)
        .build())
}

pub(super) fn delete_write(delete: DeleteBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .delete(build(delete.build())?)
        .build())
}

/// A conditional write (or a condition check) refused: the expected, explainable outcome.
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

/// A conditional request's outcome: its output, or `None` when its condition failed (another
/// writer came first, or the item is not as required); any other error is the backend's.
pub(super) fn unless_condition_failed<T, E, R>(
    result: Result<T, SdkError<E, R>>,
) -> StoreResult<Option<T>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(error) if condition_failed(&error) => Ok(None),
        Err(error) => Err(backend(error)),
    }
}

/// A transaction refused, by one of its conditions or by a conflicting concurrent write.
pub(super) fn is_cancelled<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("TransactionCanceledException")
}

impl DynamoStore {
    /// Commits `writes` as one transaction: true if it committed, false if one of its
    /// conditions (or a conflicting concurrent write) cancelled it.
    pub(super) async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<bool> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_cancelled(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    pub(super) async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.item)
    }

    pub(super) async fn put(&self, item: Item) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Puts `item` if `condition` holds (with `values` for its placeholders); false if not.
    pub(super) async fn put_if(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<bool> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        Ok(unless_condition_failed(request.send().await)?.is_some())
    }
}
