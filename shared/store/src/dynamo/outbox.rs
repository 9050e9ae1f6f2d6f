//! The activation-mail outbox.

use super::*;

impl DynamoStore {
    /// Takes a queue item until `lease_until` if it is due at `now` (`not_before` at or before
    /// it): one conditional write, so of racing workers exactly one gets it. The item as it is
    /// now, or `None` if it is gone or held.
    pub(super) async fn lease(
        &self,
        key: HashMap<String, AttributeValue>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Item>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET not_before = :lease")
            .condition_expression("attribute_exists(pk) AND not_before <= :now")
            .expression_attribute_values(":lease", n(lease_until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    /// The items of a queue partition due at `now` (`not_before` at or before it), each read
    /// with `decode`; at least `limit` of them when there are so many (callers sort and cut).
    pub(super) async fn due_items<T>(
        &self,
        pk: &str,
        now: DateTime<Utc>,
        limit: usize,
        decode: impl Fn(&Item) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .filter_expression("not_before <= :now")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .consistent_read(true);
        let mut due = Vec::new();
        each_item(query, |item| {
            due.push(decode(&item)?);
            Ok(due.len() < limit)
        })
        .await?;
        Ok(due)
    }
}

#[async_trait]
impl crate::OutboxStore for DynamoStore {
    async fn claim_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ActivationJob>> {
        self.lease(
            outbox_key(subscription_id).into_iter().collect(),
            now,
            lease_until,
        )
        .await?
        .as_ref()
        .map(activation_from)
        .transpose()
    }

    async fn due_activations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ActivationJob>> {
        let mut jobs = self
            .due_items(OUTBOX_ACTIVATION, now, limit, activation_from)
            .await?;
        jobs.sort_by_key(|job| job.linked_at);
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn complete_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        contended("one account's link", || async {
            let delete_job = delete_write(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(outbox_key(&job.subscription_id).into_iter().collect())),
            )?;
            let mark_sent = update_write(self.mark_activation(job, ActivationState::Sent))?;
            if self.transact(vec![delete_job, mark_sent]).await? {
                return Ok(Attempt::Done(true));
            }
            let current = self.link(&job.address).await?;
            if current.is_some_and(|link| link.is_current(&job.subscription_id)) {
                return Ok(Attempt::Raced);
            }
            self.discard_activation(&job.subscription_id).await?;
            Ok(Attempt::Done(false))
        })
        .await
    }

    async fn discard_activation(&self, subscription_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(subscription_id).into_iter().collect()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn defer_activation(
        &self,
        subscription_id: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(subscription_id).into_iter().collect()))
            .update_expression("SET not_before = :retry ADD attempts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":retry", n(retry_at.timestamp_millis()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Discarded meanwhile (superseded): nothing left to retry.
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }
}
