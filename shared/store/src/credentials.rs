//! Checking an account's password, with rate limiting per account and per source, per surface.
//! Shared by the Subscribe URL, the self-service routes and the mail listeners' logins.

use chrono::{DateTime, Duration, Utc};

use crate::{FailureScope, Store, StoreError, Surface};
use pushmail_core::password;
use pushmail_core::types::{Account, Address};
use pushmail_core::verified::VerifiedCache;

/// The limits on credential checks, for the whole process (settings, `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialLimits {
    /// Failed checks allowed per account in one window; the next attempt is refused.
    pub account_failures: u32,
    /// The window's length, in seconds.
    pub window_secs: i64,
    /// Failed checks from one source in a window before its checks are slowed.
    pub source_free_failures: u32,
    /// The longest a source's check is held back, in seconds.
    pub source_max_delay_secs: u32,
}

impl Default for CredentialLimits {
    fn default() -> Self {
        Self {
            account_failures: 5,
            window_secs: 900,
            source_free_failures: 10,
            source_max_delay_secs: 5,
        }
    }
}

/// How long a check waits for a place while other checks of the same account are in progress.
const BUSY_ACCOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

static LIMITS: std::sync::OnceLock<CredentialLimits> = std::sync::OnceLock::new();

impl CredentialLimits {
    /// Sets the process's limits; before the first check, once (later calls change nothing).
    pub fn configure(limits: CredentialLimits) {
        let _ = LIMITS.set(limits);
    }

    /// The process's limits (the defaults unless configured).
    pub fn get() -> Self {
        *LIMITS.get_or_init(Self::default)
    }

    /// How long a check from a source with `failures` failed checks in the window waits before
    /// its password is looked at: nothing up to `source_free_failures`, then a second more for
    /// each failure, up to `source_max_delay_secs` (Dovecot's auth_failure_delay, growing). A
    /// source is slowed, never refused: a push service logs in for many users from few
    /// addresses, and one mistyped or attacking user behind it must not lock out the others.
    /// The hard limit is the account's own guess budget.
    pub fn source_delay(&self, failures: u32) -> std::time::Duration {
        let over = failures.saturating_sub(self.source_free_failures);
        std::time::Duration::from_secs(u64::from(over.min(self.source_max_delay_secs)))
    }

    /// The start of the failure window `now` falls in: windows are aligned to their length.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let start = now.timestamp() - now.timestamp().rem_euclid(self.window_secs.max(1));
        DateTime::from_timestamp(start, 0).unwrap_or(now)
    }

    /// The refusal while failures fill the window starting at `window`: try again at its end.
    fn rate_limited(&self, window: DateTime<Utc>, now: DateTime<Utc>) -> CredentialError {
        let retry_after = (window + Duration::seconds(self.window_secs) - now)
            .num_seconds()
            .max(1);
        CredentialError::RateLimited {
            retry_after_secs: retry_after.unsigned_abs(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// Unknown account or wrong password: deliberately one case.
    #[error("unknown account or wrong password")]
    BadCredentials,
    #[error("too many failed credential checks; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// Every password-hashing slot is taken, or this account's (or source's) checks in progress
    /// fill its limit: nothing was checked or counted.
    #[error("the server is busy checking passwords; try again in a second")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CredentialError {
    /// Seconds to wait before trying again, for the limits.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Busy => Some(1),
            _ => None,
        }
    }
}

/// Verifies `password` for `address` on one `surface`. Each check first reserves a place under
/// the account's and the source's limits (atomically, before the password is hashed, so that
/// parallel guesses cannot all pass); a correct password gives the reservations back and clears
/// the account's count ("in a row"), a wrong one leaves them counted. An unknown account costs
/// the same hash work as a wrong password.
pub async fn check_credentials(
    store: &dyn Store,
    surface: Surface,
    address: &Address,
    password: &str,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Account, CredentialError> {
    let checked = checked_credentials(store, surface, address, password, source, now).await;
    let outcome = match &checked {
        Ok(_) => "ok",
        Err(CredentialError::BadCredentials) => "wrong",
        Err(CredentialError::RateLimited { .. }) => "limited",
        Err(CredentialError::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(
        pushmail_core::metric_names::CREDENTIAL_CHECKS,
        "surface" => surface.as_str(),
        "outcome" => outcome
    )
    .increment(1);
    checked
}

async fn checked_credentials(
    store: &dyn Store,
    surface: Surface,
    address: &Address,
    password: &str,
    source: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Account, CredentialError> {
    let limits = CredentialLimits::get();
    let window = limits.window_start(now);
    let expires = window + Duration::seconds(2 * limits.window_secs);
    let account_scope = FailureScope::Account(surface, address);
    // Counted under the source a peer's address belongs to (an IPv6 address's /64), whichever
    // surface it came through.
    let source = source.map(|source| match source.parse::<std::net::IpAddr>() {
        Ok(ip) => pushmail_core::network::source_of(ip).to_string(),
        Err(_) => source.to_owned(),
    });
    let source_scope = source
        .as_deref()
        .map(|source| FailureScope::Source(surface, source));
    if let Some(scope) = &source_scope {
        let delay = limits.source_delay(store.failures(scope, window).await?);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let verified = verified_a_moment_ago(store, &account_scope, address, password, &limits, now);
    if let Some(account) = verified.await? {
        return Ok(account);
    }
    // Checks in progress filling the account's places (a mail client opening several sessions
    // at once, each waiting for the same first argon2 check) make this one wait its turn, as
    // Dovecot's auth queue does, rather than refuse it; failures refuse at once.
    let mut pause = std::time::Duration::from_millis(25);
    let give_up = tokio::time::Instant::now() + BUSY_ACCOUNT_WAIT;
    while !store
        .reserve_attempt(
            &account_scope,
            window,
            expires,
            limits.account_failures,
            now,
        )
        .await?
    {
        let refused = refusal(store, &account_scope, &limits, window, now).await?;
        if !matches!(refused, CredentialError::Busy) || tokio::time::Instant::now() >= give_up {
            return Err(refused);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(400));
    }
    let give_back = async |store: &dyn Store| -> Result<(), StoreError> {
        store.release_attempt(&account_scope, window).await
    };
    // Read again once a place is held (the wait can be seconds): the hash checked is the
    // account's as it is now.
    let account = match store.account(address).await {
        Ok(account) => account,
        Err(error) => {
            give_back(store).await?;
            return Err(error.into());
        }
    };
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let password_ok = match password::verify_password_off_thread(password, stored_hash).await {
        Ok(ok) => ok,
        Err(error) => {
            give_back(store).await?;
            return Err(match error {
                password::HashError::Busy => CredentialError::Busy,
                password::HashError::Failed(why) => {
                    CredentialError::Store(StoreError::Backend(format!("password check: {why}")))
                }
            });
        }
    };
    match account {
        Some(account) if password_ok => {
            VerifiedCache::get().remember(&account, password);
            store.clear_failures(&account_scope, window).await?;
            Ok(account)
        }
        _ => {
            store
                .count_failure(&account_scope, window, expires, now)
                .await?;
            if let Some(scope) = &source_scope {
                store.count_failure(scope, window, expires, now).await?;
            }
            Err(CredentialError::BadCredentials)
        }
    }
}

/// The account, if `password` was verified for it as it is now a moment ago
/// ([`VerifiedCache`]) and its failures leave room in the window. Such a login hashes nothing,
/// so it takes no place among the checks in progress (those bound hashing and parallel
/// guesses) and writes nothing unless failures are there to clear ("in a row"); while failures
/// fill the window it is refused like any check, right password or not.
async fn verified_a_moment_ago(
    store: &dyn Store,
    scope: &FailureScope<'_>,
    address: &Address,
    password: &str,
    limits: &CredentialLimits,
    now: DateTime<Utc>,
) -> Result<Option<Account>, CredentialError> {
    let Some(account) = store.account(address).await? else {
        return Ok(None);
    };
    if !VerifiedCache::get().holds(&account, password) {
        return Ok(None);
    }
    let window = limits.window_start(now);
    let failures = store.failures(scope, window).await?;
    if failures >= limits.account_failures {
        return Err(limits.rate_limited(window, now));
    }
    if failures > 0 {
        store.clear_failures(scope, window).await?;
    }
    Ok(Some(account))
}

/// A mail listener's login (SMTP AUTH, IMAP LOGIN): `login` must be an address, the account
/// enabled; the check is [`check_credentials`] with the peer's address as the source. Every
/// refusal but the limits and the store's failure is `BadCredentials`, alike.
pub async fn check_login(
    store: &dyn Store,
    surface: Surface,
    login: &str,
    password: &str,
    peer: std::net::IpAddr,
) -> Result<Account, CredentialError> {
    let address = Address::parse(login).map_err(|_| CredentialError::BadCredentials)?;
    let source = peer.to_string();
    let account = check_credentials(
        store,
        surface,
        &address,
        password,
        Some(&source),
        Utc::now(),
    )
    .await?;
    if account.enabled {
        Ok(account)
    } else {
        Err(CredentialError::BadCredentials)
    }
}

/// Why a reservation was refused: the failures reached the limit (wait for the window to
/// end), or checks in progress fill it (try again in a second).
async fn refusal(
    store: &dyn Store,
    scope: &FailureScope<'_>,
    limits: &CredentialLimits,
    window: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<CredentialError, StoreError> {
    if store.failures(scope, window).await? < limits.account_failures {
        return Ok(CredentialError::Busy);
    }
    Ok(limits.rate_limited(window, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_windows_are_aligned() {
        let at = DateTime::from_timestamp(1_800_000_123, 0).unwrap();
        let limits = CredentialLimits {
            window_secs: 900,
            ..CredentialLimits::default()
        };
        assert_eq!(limits.window_start(at).timestamp() % 900, 0);
        assert!(limits.window_start(at) <= at);
    }
}
