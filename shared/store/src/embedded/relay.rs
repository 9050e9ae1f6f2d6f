//! The relay queue: jobs and their bytes, each change one write transaction.

use redb::TableDefinition;

use super::*;
use crate::relay::RelayJob;

/// id → job.
const RELAY: Records = TableDefinition::new("relay_queue");
/// id → the message's bytes.
const RELAY_BODIES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("relay_bodies");
/// `<not before, unix ms, 20 digits> SEP <id>` → "": the jobs in the order they fall due, so a
/// pass reads the due ones alone. Without it every pass (one each time mail is queued) read and
/// decoded the whole queue: a burst of ten thousand messages queued behind a slow relay cost
/// fifty million decodes.
const RELAY_DUE: Records = TableDefinition::new("relay_due");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    txn.open_table(RELAY_BODIES)?;
    build_missing_index(txn, RELAY, RELAY_DUE, |_, job| {
        Ok(due_key(&decode::<RelayJob>(job)?))
    })
}

fn due_key(job: &RelayJob) -> String {
    timed_key(job.not_before.timestamp_millis(), &job.id)
}

/// Writes `job` (new or changed) with its place in the due order, `before` (as it was) taken
/// out of it.
fn put_job(txn: &WriteTransaction, job: &RelayJob, before: Option<&RelayJob>) -> TxResult<()> {
    let mut due = txn.open_table(RELAY_DUE)?;
    if let Some(before) = before {
        due.remove(due_key(before).as_str())?;
    }
    due.insert(due_key(job).as_str(), "")?;
    txn.open_table(RELAY)?
        .insert(job.id.as_str(), encode(job)?.as_str())?;
    Ok(())
}

#[async_trait]
impl crate::RelayStore for EmbeddedStore {
    async fn enqueue_relay(&self, job: &RelayJob, raw: &[u8]) -> StoreResult<()> {
        let (job, raw) = (job.clone(), raw.to_vec());
        self.write(move |txn| {
            let before: Option<RelayJob> = get(&txn.open_table(RELAY)?, &job.id)?;
            put_job(txn, &job, before.as_ref())?;
            txn.open_table(RELAY_BODIES)?
                .insert(job.id.as_str(), raw.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn due_relays(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RelayJob>> {
        // Up to and with jobs due at `now` itself: before every key of the next millisecond.
        let end = timed_key(now.timestamp_millis().saturating_add(1), "");
        self.read(move |txn| {
            let (due, queue) = (txn.open_table(RELAY_DUE)?, txn.open_table(RELAY)?);
            let mut jobs = Vec::new();
            for entry in due.range::<&str>(..end.as_str())?.take(limit) {
                let entry = entry?;
                let Some((_, id)) = entry.0.value().split_once(SEP) else {
                    continue;
                };
                let job = get::<RelayJob>(&queue, id)?;
                jobs.extend(job.filter(|job| job.not_before <= now));
            }
            Ok(jobs)
        })
        .await
    }

    async fn claim_relay(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<RelayJob>> {
        let id = id.to_owned();
        self.write(move |txn| {
            let job: Option<RelayJob> = get(&txn.open_table(RELAY)?, &id)?;
            let Some(before) = job.filter(|job| job.not_before <= now) else {
                return Ok(None);
            };
            let job = RelayJob {
                not_before: lease_until,
                ..before.clone()
            };
            put_job(txn, &job, Some(&before))?;
            Ok(Some(job))
        })
        .await
    }

    async fn relay_body(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        let id = id.to_owned();
        self.read(move |txn| {
            let bodies = txn.open_table(RELAY_BODIES)?;
            Ok(bodies.get(id.as_str())?.map(|raw| raw.value().to_vec()))
        })
        .await
    }

    async fn defer_relay(
        &self,
        id: &str,
        remaining: &[Address],
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        let (id, remaining, error) = (id.to_owned(), remaining.to_vec(), error.to_owned());
        self.write(move |txn| {
            let job: Option<RelayJob> = get(&txn.open_table(RELAY)?, &id)?;
            if let Some(before) = job {
                let job = RelayJob {
                    attempts: before.attempts + 1,
                    not_before: retry_at,
                    recipients: remaining.clone(),
                    last_error: Some(error.clone()),
                    ..before.clone()
                };
                put_job(txn, &job, Some(&before))?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_relay(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |txn| {
            let job: Option<RelayJob> = get(&txn.open_table(RELAY)?, &id)?;
            if let Some(job) = job {
                txn.open_table(RELAY_DUE)?.remove(due_key(&job).as_str())?;
            }
            txn.open_table(RELAY)?.remove(id.as_str())?;
            txn.open_table(RELAY_BODIES)?.remove(id.as_str())?;
            Ok(())
        })
        .await
    }
}
