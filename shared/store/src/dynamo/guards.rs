//! The replay guard and failed-credential counters.

use super::*;

#[async_trait]
impl crate::GuardStore for DynamoStore {
    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let item = HashMap::from([
            ("pk".into(), s(format!("REPLAY#{key}"))),
            ("sk".into(), s("REPLAY")),
            ("expires_at".into(), n(expires_at.timestamp())),
        ]);
        // TTL deletes lazily, so an expired item may still be there: it no longer counts.
        let condition = "attribute_not_exists(pk) OR expires_at < :now";
        self.put_if(item, condition, vec![(":now", n(now.timestamp()))])
            .await
    }

    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32> {
        match self.get(rate_pk(scope, window_start), "RATE").await? {
            Some(item) => get_n(&item, "failures"),
            None => Ok(0),
        }
    }

    async fn add_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .update_expression("ADD failures :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at.timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        get_n(&output.attributes.unwrap_or_default(), "failures")
    }

    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
