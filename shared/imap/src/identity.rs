//! Who a session logged in as, and the check, repeated as the session goes on, that the
//! account is still that one: not deleted (nor created again at its address), the same
//! password, enabled. An admin's change ends every session of the account within seconds, in
//! every process, since the check reads the store.

use std::time::Duration;

use tracing::{info, warn};

use pushmail_core::types::Address;
use pushmail_store::Store;

/// The account a session logged in as, to tell it from what the address is now.
pub(crate) struct Identity {
    /// The account's creation time: what the session's writes are stored for.
    pub known_at: chrono::DateTime<chrono::Utc>,
    fingerprint: u64,
    checked: std::time::Instant,
}

impl Identity {
    /// The account as it is at login.
    pub fn of(account: &pushmail_core::account::Account) -> Self {
        Self {
            known_at: account.created_at,
            fingerprint: account.session_fingerprint(),
            checked: std::time::Instant::now(),
        }
    }
}

/// How often a working session checks that its account is still the one it logged in as.
const IDENTITY_RECHECK: Duration = Duration::from_secs(2);

impl Identity {
    /// Whether the logged-in account is still the one the session logged in as: not deleted
    /// (nor created again), its password unchanged, enabled. Read at most every
    /// [`IDENTITY_RECHECK`], so an admin's change ends every session of the account within
    /// seconds, in every process. A store that cannot answer ends nothing.
    pub(crate) async fn still_holds(
        &mut self,
        store: &dyn Store,
        user: &Address,
        peer: std::net::SocketAddr,
    ) -> bool {
        if self.checked.elapsed() < IDENTITY_RECHECK {
            return true;
        }
        match store.account(user).await {
            Ok(account) => {
                self.checked = std::time::Instant::now();
                let same = account
                    .is_some_and(|account| account.session_fingerprint() == self.fingerprint);
                if !same {
                    info!(%peer, account = %user, "IMAP session ended: account removed or changed");
                }
                same
            }
            Err(error) => {
                warn!(%peer, %error, "IMAP: account not checked");
                true
            }
        }
    }
}
