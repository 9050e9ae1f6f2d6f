//! Listener heartbeats.

use super::*;

#[async_trait]
impl crate::LivenessStore for EmbeddedStore {
    async fn record_heartbeat(
        &self,
        kind: &str,
        instance: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(&[kind, instance]);
        self.write(move |txn| {
            txn.open_table(HEARTBEATS)?
                .insert(k.as_str(), at.timestamp_millis().to_string().as_str())?;
            Ok(())
        })
        .await
    }

    async fn latest_heartbeat(&self, kind: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let prefix = format!("{kind}{SEP}");
        self.read(move |txn| {
            Ok(scan(&txn.open_table(HEARTBEATS)?, &prefix, None, false)?
                .iter()
                .filter_map(|(_, v)| v.parse::<i64>().ok())
                .max()
                .and_then(DateTime::from_timestamp_millis))
        })
        .await
    }
}
