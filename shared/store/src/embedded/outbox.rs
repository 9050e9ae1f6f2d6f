//! The activation-mail outbox.

use super::*;

#[async_trait]
impl crate::OutboxStore for EmbeddedStore {
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
            let Some(current) = current.filter(|l| l.is_current(&job.subscription_id)) else {
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
}
