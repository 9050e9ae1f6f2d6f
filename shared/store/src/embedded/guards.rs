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
        self.read(move |txn| Ok(counter(&txn.open_table(FAILURES)?, &k)?.failures))
            .await
    }

    async fn reserve_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        _expires_at: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let scope_key = scope.key();
        let k = key(&[&scope_key, &window_start.timestamp().to_string()]);
        let prefix = format!("{scope_key}{SEP}");
        self.write(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            let mut count = counter(&failures, &k)?;
            if count.attempts >= limit {
                // Checks reserved so long ago died with their process: only failures count.
                if count.pending_until >= now.timestamp() || count.failures >= limit {
                    return Ok(false);
                }
                count.attempts = count.failures;
            }
            count.pending_until = now.timestamp() + crate::RESERVATION_SECS;
            // Older windows of this scope no longer count.
            for (old, _) in scan(&failures, &prefix, None, false)? {
                if old != k {
                    failures.remove(old.as_str())?;
                }
            }
            count.attempts += 1;
            failures.insert(k.as_str(), count.to_string().as_str())?;
            Ok(true)
        })
        .await
    }

    async fn release_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.change_counter(scope, window_start, |count| {
            count.attempts = count.attempts.saturating_sub(1);
        })
        .await
    }

    async fn count_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.change_counter(scope, window_start, |count| count.failures += 1)
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

impl EmbeddedStore {
    /// Reads a rate counter, changes it and writes it back, in one write transaction.
    async fn change_counter(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        change: impl Fn(&mut Counter) + Send + 'static,
    ) -> StoreResult<()> {
        let k = key(&[&scope.key(), &window_start.timestamp().to_string()]);
        self.write(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            let mut count = counter(&failures, &k)?;
            change(&mut count);
            failures.insert(k.as_str(), count.to_string().as_str())?;
            Ok(())
        })
        .await
    }
}

/// A rate counter: checks reserved (in progress or failed), of them the failed ones, and
/// when the last reservation expires (unix seconds; 0 in counters written before it).
#[derive(Debug, Default)]
struct Counter {
    attempts: u32,
    failures: u32,
    pending_until: i64,
}

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.attempts, self.failures, self.pending_until
        )
    }
}

fn counter(table: &impl ReadableTable<&'static str, &'static str>, k: &str) -> TxResult<Counter> {
    let Some(value) = table.get(k)? else {
        return Ok(Counter::default());
    };
    let value = value.value();
    let mut numbers = value.split(' ');
    let mut next = || numbers.next().map(str::parse::<i64>);
    match (next(), next(), next()) {
        (Some(Ok(attempts)), Some(Ok(failures)), pending) => Ok(Counter {
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            pending_until: match pending {
                Some(Ok(until)) => until,
                _ => 0,
            },
        }),
        _ => Err(StoreError::Corrupt(format!("rate counter {k:?} is {value:?}")).into()),
    }
}
