//! Listener heartbeats.

use super::*;

#[async_trait]
impl crate::LivenessStore for DynamoStore {
    async fn record_heartbeat(
        &self,
        kind: &str,
        instance: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s(format!("HEARTBEAT#{kind}"))),
            ("sk".into(), s(instance)),
            ("at".into(), n(at.timestamp_millis())),
            ("expires_at".into(), n(at.timestamp() + HEARTBEAT_KEEP_SECS)),
        ]))
        .await
    }

    async fn latest_heartbeat(&self, kind: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.query_partition(format!("HEARTBEAT#{kind}"), None, false)
            .await?
            .iter()
            .map(|item| get_millis(item, "at"))
            .try_fold(None, |latest: Option<DateTime<Utc>>, at| {
                let at = at?;
                Ok(Some(latest.map_or(at, |l| l.max(at))))
            })
    }
}
