//! The replay guard and failed-credential counters.

use super::*;

#[async_trait]
impl crate::GuardStore for EmbeddedStore {
    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let signature = key.to_owned();
        self.write(move |txn| {
            let mut replay = txn.open_table(REPLAY)?;
            let seen_until = replay
                .get(signature.as_str())?
                .and_then(|v| v.value().parse::<i64>().ok());
            if seen_until.is_some_and(|until| until >= now.timestamp()) {
                return Ok(false);
            }
            replay.insert(
                signature.as_str(),
                expires_at.timestamp().to_string().as_str(),
            )?;
            // Expired entries go as new ones arrive, so the guard stays the size of 10 minutes.
            let expired: Vec<String> = scan(&replay, "", None, false)?
                .into_iter()
                .filter(|(_, v)| v.parse::<i64>().is_ok_and(|until| until < now.timestamp()))
                .map(|(k, _)| k)
                .take(64)
                .collect();
            for k in expired {
                replay.remove(k.as_str())?;
            }
            Ok(true)
        })
        .await
    }

    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let k = key(&[&scope.key(), &window_start.timestamp().to_string()]);
        self.read(move |txn| {
            Ok(txn
                .open_table(FAILURES)?
                .get(k.as_str())?
                .and_then(|v| v.value().parse().ok())
                .unwrap_or(0))
        })
        .await
    }

    async fn add_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let scope_key = scope.key();
        let k = key(&[&scope_key, &window_start.timestamp().to_string()]);
        let prefix = format!("{scope_key}{SEP}");
        self.write(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            let count = failures
                .get(k.as_str())?
                .and_then(|v| v.value().parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            // Older windows of this scope no longer count.
            for (old, _) in scan(&failures, &prefix, None, false)? {
                if old != k {
                    failures.remove(old.as_str())?;
                }
            }
            failures.insert(k.as_str(), count.to_string().as_str())?;
            Ok(count)
        })
        .await
    }

    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = key(&[&scope.key(), &window_start.timestamp().to_string()]);
        self.write(move |txn| {
            txn.open_table(FAILURES)?.remove(k.as_str())?;
            Ok(())
        })
        .await
    }
}
