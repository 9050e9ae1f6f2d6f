//! The activation-mail outbox.

use super::*;

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
        // Discarded meanwhile (superseded): nothing left to retry.
        self.defer_item(
            (OUTBOX_ACTIVATION, &outbox_sk(subscription_id)),
            retry_at,
            "",
            "ADD attempts :one",
            vec![(":one".to_owned(), n(1))],
        )
        .await
    }
}
