//! The relay queue: one item per job under one partition (`RELAY`), its bytes in S3 under
//! `relay/<id>`. The job travels as JSON in `job`; `not_before` is also a number of its own, for
//! the conditions that lease a job to one worker.

use super::*;
use crate::relay::RelayJob;

fn relay_key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(RELAY_PK)), ("sk".into(), s(id))])
}

fn body_key(id: &str) -> String {
    format!("relay/{id}")
}

fn relay_from(item: &Item) -> StoreResult<RelayJob> {
    let mut job: RelayJob =
        serde_json::from_str(get_s(item, "job")?).map_err(|_| corrupt(item, "job"))?;
    job.not_before = get_millis(item, "not_before")?;
    Ok(job)
}

fn encode(job: &RelayJob) -> StoreResult<AttributeValue> {
    serde_json::to_string(job)
        .map(s)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl crate::RelayStore for DynamoStore {
    async fn enqueue_relay(&self, job: &RelayJob, raw: &[u8]) -> StoreResult<()> {
        // The bytes first: a job is never visible without them.
        self.bodies()?.put_body(&body_key(&job.id), raw).await?;
        let item: Item = [
            ("pk".to_owned(), s(RELAY_PK)),
            ("sk".to_owned(), s(&job.id)),
            ("job".to_owned(), encode(job)?),
            (
                "not_before".to_owned(),
                n(job.not_before.timestamp_millis()),
            ),
        ]
        .into_iter()
        .chain(due_attributes(RELAY_PK, &job.id, job.not_before))
        .collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn due_relays(&self, now: DateTime<Utc>, limit: usize) -> StoreResult<Vec<RelayJob>> {
        let mut jobs = self.due_items(RELAY_PK, now, limit, relay_from).await?;
        jobs.sort_by_key(|job| job.created_at);
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn claim_relay(
        &self,
        id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<RelayJob>> {
        self.lease(relay_key(id), now, lease_until)
            .await?
            .as_ref()
            .map(relay_from)
            .transpose()
    }

    async fn relay_body(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        if self.get(RELAY_PK.to_owned(), id).await?.is_none() {
            return Ok(None);
        }
        self.bodies()?.body(&body_key(id)).await.map(Some)
    }

    async fn defer_relay(
        &self,
        id: &str,
        remaining: &[Address],
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        let Some(item) = self.get(RELAY_PK.to_owned(), id).await? else {
            return Ok(());
        };
        let mut job = relay_from(&item)?;
        job.attempts += 1;
        job.recipients = remaining.to_vec();
        job.not_before = retry_at;
        job.last_error = Some(error.to_owned());
        // Only the worker holding the lease defers; a finished job stays finished.
        self.defer_item(
            (RELAY_PK, id),
            retry_at,
            ", job = :job",
            "",
            vec![(":job".to_owned(), encode(&job)?)],
        )
        .await
    }

    async fn finish_relay(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(relay_key(id)))
            .send()
            .await
            .map_err(backend)?;
        self.bodies()?.delete_body(&body_key(id)).await
    }
}
