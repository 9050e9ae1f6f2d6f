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
            // Expired entries go as new ones arrive, so the guard stays the size of 10 minutes;
            // a signature remembered again since is not one of them.
            let mut by_expiry = txn.open_table(REPLAY_EXPIRY)?;
            let now = now.timestamp();
            let expired = |row: &str| row.parse::<i64>().is_ok_and(|until| until < now);
            expire(
                &mut replay,
                &mut by_expiry,
                &signature,
                expires_at.timestamp(),
                now,
                expired,
            )?;
            Ok(true)
        })
        .await
    }

    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let k = counter_key(scope, window_start);
        self.read(move |txn| Ok(counter(&txn.open_table(FAILURES)?, &k)?.failures))
            .await
    }

    async fn reserve_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let k = counter_key(scope, window_start);
        let prefix = format!("{}{SEP}", scope.key());
        // Answered at its commit, as the give-back and the clearing below: what keeps parallel
        // guesses apart is that writes are serial and seen at their commit, not the disk. A
        // crash can take back only a place in progress (the check died with it) or a clearing
        // (the account's count stays). A failure is counted by a durable write before its
        // answer, which brings every write before it to the disk (`writer.rs`). So a login
        // with a right password waits for no flush.
        self.write_committed(move |txn| {
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
            expire_counter(txn, &mut failures, &k, expires_at, now)?;
            Ok(true)
        })
        .await
    }

    async fn release_attempt(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = counter_key(scope, window_start);
        self.write_committed(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            // Only a counter there is: none is made (it would have no expiry).
            if failures.get(k.as_str())?.is_some() {
                let mut count = counter(&failures, &k)?;
                count.attempts = count.attempts.saturating_sub(1);
                failures.insert(k.as_str(), count.to_string().as_str())?;
            }
            Ok(())
        })
        .await
    }

    async fn count_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = counter_key(scope, window_start);
        self.write(move |txn| {
            let mut failures = txn.open_table(FAILURES)?;
            let mut count = counter(&failures, &k)?;
            count.failures += 1;
            failures.insert(k.as_str(), count.to_string().as_str())?;
            expire_counter(txn, &mut failures, &k, expires_at, now)?;
            Ok(())
        })
        .await
    }

    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        let k = counter_key(scope, window_start);
        self.write_committed(move |txn| {
            txn.open_table(FAILURES)?.remove(k.as_str())?;
            Ok(())
        })
        .await
    }
}

/// The most expired entries one write drops: more than it adds, so a table shrinks back to its
/// live entries, and bounded, so no write pays for a backlog all at once.
const DROPPED_PER_WRITE: usize = 64;

/// `k` of `table` goes once `expires_at` (unix seconds) has passed: noted in `by_expiry`, keyed
/// by that time first. Then up to [`DROPPED_PER_WRITE`] entries that expired before `now` go,
/// oldest first, each with its row of `table` if `expired(row)` (a row written again since
/// stays). DynamoDB's TTL does this for its items; here every write that adds does it.
fn expire(
    table: &mut redb::Table<'_, &'static str, &'static str>,
    by_expiry: &mut redb::Table<'_, &'static str, &'static str>,
    k: &str,
    expires_at: i64,
    now: i64,
    expired: impl Fn(&str) -> bool,
) -> TxResult<()> {
    by_expiry.insert(timed_key(expires_at, k).as_str(), "")?;
    let before_now = timed_key(now, "");
    let gone = by_expiry
        .range::<&str>(..before_now.as_str())?
        .take(DROPPED_PER_WRITE)
        .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
        .collect::<Result<Vec<_>, _>>()?;
    for entry in gone {
        by_expiry.remove(entry.as_str())?;
        let Some((_, row)) = entry.split_once(SEP) else {
            continue;
        };
        let value = table.get(row)?.map(|value| value.value().to_owned());
        if value.is_some_and(|value| expired(&value)) {
            table.remove(row)?;
        }
    }
    Ok(())
}

/// A rate counter's key: its scope, then its window's start.
fn counter_key(scope: &FailureScope<'_>, window_start: DateTime<Utc>) -> String {
    key(&[&scope.key(), &window_start.timestamp().to_string()])
}

/// [`expire`] for the rate counter `k`, just written: it goes with the rest at `expires_at`.
fn expire_counter(
    txn: &WriteTransaction,
    failures: &mut redb::Table<'_, &'static str, &'static str>,
    k: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> TxResult<()> {
    let mut by_expiry = txn.open_table(FAILURE_EXPIRY)?;
    let (expires_at, now) = (expires_at.timestamp(), now.timestamp());
    expire(failures, &mut by_expiry, k, expires_at, now, |_| true)
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
