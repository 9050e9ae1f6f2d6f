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
            Some(item) if item.contains_key("failures") => get_n(&item, "failures"),
            _ => Ok(0),
        }
    }

    async fn reserve_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let until = now.timestamp() + crate::RESERVATION_SECS;
        let update = || {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(rate_pk(scope, window_start)))
                .key("sk", s("RATE"))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limit))
                .expression_attribute_values(":expires", n(expires_at.timestamp()))
                .expression_attribute_values(":until", n(until))
        };
        // Room under the limit: one more reservation.
        let reserved = update()
            .update_expression(
                "ADD attempts :one SET expires_at = :expires, pending_until = :until",
            )
            .condition_expression("attribute_not_exists(attempts) OR attempts < :limit")
            .send()
            .await;
        if unless_condition_failed(reserved)?.is_some() {
            return Ok(true);
        }
        // Full, but every reservation in it is older than RESERVATION_SECS (their checks
        // died with their process): only the failures count, and this check is reserved.
        let renewed = update()
            .update_expression(
                "SET attempts = if_not_exists(failures, :zero) + :one, \
                 expires_at = :expires, pending_until = :until",
            )
            .condition_expression(
                "(attribute_not_exists(pending_until) OR pending_until < :now) \
                 AND (attribute_not_exists(failures) OR failures < :limit)",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        Ok(unless_condition_failed(renewed)?.is_some())
    }

    async fn release_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .update_expression("ADD attempts :minus_one")
            .condition_expression("attempts > :zero")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        unless_condition_failed(result).map(drop)
    }

    async fn count_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .update_expression("ADD failures :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at.timestamp()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
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
