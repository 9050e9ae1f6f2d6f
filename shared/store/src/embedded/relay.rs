//! The relay queue: jobs and their bytes, each change one write transaction.

use redb::TableDefinition;

use super::*;
use crate::relay::RelayJob;

/// id → job.
const RELAY: Records = TableDefinition::new("relay_queue");
/// id → the message's bytes.
const RELAY_BODIES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("relay_bodies");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    txn.open_table(RELAY)?;
    txn.open_table(RELAY_BODIES)?;
    Ok(())
}

#[async_trait]
impl crate::RelayStore for EmbeddedStore {
    async fn enqueue_relay(&self, job: &RelayJob, raw: &[u8]) -> StoreResult<()> {
        let (job, raw) = (job.clone(), raw.to_vec());
        self.write(move |txn| {
            txn.open_table(RELAY)?
                .insert(job.id.as_str(), encode(&job)?.as_str())?;
            txn.open_table(RELAY_BODIES)?
                .insert(job.id.as_str(), raw.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn due_relays(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RelayJob>> {
        self.read(move |txn| {
            let mut jobs: Vec<RelayJob> = scan(&txn.open_table(RELAY)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<Vec<RelayJob>>>()?
                .into_iter()
                .filter(|job| job.not_before <= now)
                .collect();
            jobs.sort_by_key(|job| job.created_at);
            jobs.truncate(limit);
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
            let mut queue = txn.open_table(RELAY)?;
            let job: Option<RelayJob> = get(&queue, &id)?;
            let Some(mut job) = job.filter(|job| job.not_before <= now) else {
                return Ok(None);
            };
            job.not_before = lease_until;
            queue.insert(id.as_str(), encode(&job)?.as_str())?;
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
            let mut queue = txn.open_table(RELAY)?;
            let job: Option<RelayJob> = get(&queue, &id)?;
            if let Some(mut job) = job {
                job.attempts += 1;
                job.not_before = retry_at;
                job.recipients = remaining.clone();
                job.last_error = Some(error.clone());
                queue.insert(id.as_str(), encode(&job)?.as_str())?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_relay(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |txn| {
            txn.open_table(RELAY)?.remove(id.as_str())?;
            txn.open_table(RELAY_BODIES)?.remove(id.as_str())?;
            Ok(())
        })
        .await
    }
}
