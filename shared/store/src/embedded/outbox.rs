//! The activation-mail outbox.

use super::*;

/// `<not before, unix ms, 20 digits> SEP <subscription id>` → "": the jobs in the order they fall
/// due, so a sweep reads the due ones alone (it read and decoded the whole outbox before: every
/// SUBSCRIBE made while the mail service was down).
const OUTBOX_DUE: Records = TableDefinition::new("activation_due");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    build_missing_index(txn, OUTBOX, OUTBOX_DUE, |_, job| {
        Ok(due_key(&decode::<ActivationJob>(job)?))
    })
}

fn due_key(job: &ActivationJob) -> String {
    timed_key(job.not_before.timestamp_millis(), &job.subscription_id)
}

/// Writes `job` (new or changed) with its place in the due order.
pub(super) fn put_job(txn: &WriteTransaction, job: &ActivationJob) -> TxResult<()> {
    remove_job(txn, &job.subscription_id)?;
    txn.open_table(OUTBOX_DUE)?
        .insert(due_key(job).as_str(), "")?;
    txn.open_table(OUTBOX)?
        .insert(job.subscription_id.as_str(), encode(job)?.as_str())?;
    Ok(())
}

/// Takes the job out, with its place in the due order; the job as it was.
fn remove_job(txn: &WriteTransaction, subscription_id: &str) -> TxResult<Option<ActivationJob>> {
    let job: Option<ActivationJob> = {
        let mut outbox = txn.open_table(OUTBOX)?;
        let removed = outbox.remove(subscription_id)?;
        removed.map(|raw| decode(raw.value())).transpose()?
    };
    let Some(job) = job else {
        return Ok(None);
    };
    txn.open_table(OUTBOX_DUE)?.remove(due_key(&job).as_str())?;
    Ok(Some(job))
}

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
            let job: Option<ActivationJob> = get(&txn.open_table(OUTBOX)?, &id)?;
            let Some(mut job) = job.filter(|j| j.not_before <= now) else {
                return Ok(None);
            };
            job.not_before = lease_until;
            put_job(txn, &job)?;
            Ok(Some(job))
        })
        .await
    }

    async fn due_activations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ActivationJob>> {
        // Up to and with jobs due at `now` itself: before every key of the next millisecond.
        let end = timed_key(now.timestamp_millis().saturating_add(1), "");
        self.read(move |txn| {
            let (due, outbox) = (txn.open_table(OUTBOX_DUE)?, txn.open_table(OUTBOX)?);
            let mut jobs = Vec::new();
            for entry in due.range::<&str>(..end.as_str())?.take(limit) {
                let entry = entry?;
                let Some((_, id)) = entry.0.value().split_once(SEP) else {
                    continue;
                };
                let job = get::<ActivationJob>(&outbox, id)?;
                jobs.extend(job.filter(|job| job.not_before <= now));
            }
            jobs.sort_by_key(|job| job.linked_at);
            Ok(jobs)
        })
        .await
    }

    async fn complete_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let job = job.clone();
        self.write(move |txn| {
            remove_job(txn, &job.subscription_id)?;
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
            remove_job(txn, &id)?;
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
            let job: Option<ActivationJob> = get(&txn.open_table(OUTBOX)?, &id)?;
            if let Some(mut job) = job {
                job.attempts += 1;
                job.not_before = retry_at;
                put_job(txn, &job)?;
            }
            Ok(())
        })
        .await
    }
}
