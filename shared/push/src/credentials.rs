//! Checking an account's password, with rate limiting of failures per account and per source.
//! Shared by the Subscribe URL and the self-service routes (and later IMAP/SMTP logins).

use chrono::{DateTime, Duration, Utc};

use pushmail_core::password;
use pushmail_core::types::{Account, Address};
use pushmail_store::{FailureScope, Store, StoreError};

/// Failed checks allowed per account in one window; the next attempt is refused.
pub const ACCOUNT_FAILURE_LIMIT: u32 = 5;
/// Failed checks allowed per source address in one window.
pub const SOURCE_FAILURE_LIMIT: u32 = 20;
pub const FAILURE_WINDOW_SECS: i64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Unknown account or wrong password: deliberately one case.
    #[error("unknown account or wrong password")]
    BadCredentials,
    #[error("too many failed credential checks; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies `password` for `address`. A correct password clears the account's failure count
/// ("in a row"); each failure counts against the account and the source. An unknown account
/// costs the same hash work as a wrong password.
pub async fn check_credentials(
    store: &dyn Store,
    address: &Address,
    password: &str,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Account, CredentialError> {
    let account_scope = FailureScope::Account(address);
    let source_scope = source.map(FailureScope::Source);
    let window = failure_window(now);
    check_rate(store, &account_scope, ACCOUNT_FAILURE_LIMIT, window, now).await?;
    if let Some(scope) = &source_scope {
        check_rate(store, scope, SOURCE_FAILURE_LIMIT, window, now).await?;
    }
    let account = store.account(address).await?;
    // Argon2 is deliberately slow: off the async workers, so other requests are not held up.
    let (candidate, stored) = (
        password.to_owned(),
        account.as_ref().map(|a| a.password_hash.clone()),
    );
    let password_ok = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password::verify_password(&candidate, &hash),
        None => {
            password::verify_against_nothing(&candidate);
            false
        }
    })
    .await
    .map_err(|e| StoreError::Backend(format!("password check task: {e}")))?;
    match account {
        Some(account) if password_ok => {
            store.clear_failures(&account_scope, window).await?;
            Ok(account)
        }
        _ => {
            let expires = window + Duration::seconds(2 * FAILURE_WINDOW_SECS);
            store.add_failure(&account_scope, window, expires).await?;
            if let Some(scope) = &source_scope {
                store.add_failure(scope, window, expires).await?;
            }
            Err(CredentialError::BadCredentials)
        }
    }
}

async fn check_rate(
    store: &dyn Store,
    scope: &FailureScope<'_>,
    limit: u32,
    window: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), CredentialError> {
    if store.failures(scope, window).await? < limit {
        return Ok(());
    }
    let retry_after = (window + Duration::seconds(FAILURE_WINDOW_SECS) - now)
        .num_seconds()
        .max(1);
    Err(CredentialError::RateLimited {
        retry_after_secs: retry_after.unsigned_abs(),
    })
}

fn failure_window(now: DateTime<Utc>) -> DateTime<Utc> {
    let start = now.timestamp() - now.timestamp().rem_euclid(FAILURE_WINDOW_SECS);
    DateTime::from_timestamp(start, 0).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_windows_are_aligned() {
        let at = DateTime::from_timestamp(1_800_000_123, 0).unwrap();
        assert_eq!(failure_window(at).timestamp() % FAILURE_WINDOW_SECS, 0);
        assert!(failure_window(at) <= at);
    }
}
