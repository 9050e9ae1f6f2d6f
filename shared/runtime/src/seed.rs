//! Setting up a domain with push on, a push secret and an account in one go: the local
//! process's demo, and `pushmail seed`.

use std::sync::Arc;

use pushmail_core::password::hash_password_off_thread;
use pushmail_core::protocol::MAX_LIVE_SECRETS;
use pushmail_core::types::{Account, Address, Domain, PushSecret, ServerSettings, now};
use pushmail_store::{AccountUpdate, SecretAdd, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// What to seed.
#[derive(Debug, Clone)]
pub struct Seed {
    pub account: Address,
    pub password: String,
    pub secret: String,
    pub subscribe_url: String,
    pub smtp_server: String,
}

/// Turns push on server-wide and for the account's domain, adds the secret unless the domain
/// has it already, and creates the account (or resets its password).
pub async fn seed(store: &Arc<dyn Store>, seed: &Seed) -> Result<(), SeedError> {
    let at = now();
    let name = seed.account.domain();
    store
        .put_server_settings(&ServerSettings { push_enabled: true })
        .await?;
    let mut domain = store
        .domain(&name)
        .await?
        .unwrap_or_else(|| Domain::new(name.clone(), at));
    domain.push_enabled = true;
    domain.subscribe_url = Some(seed.subscribe_url.clone());
    domain.smtp_server = Some(seed.smtp_server.clone());
    store.put_domain(&domain).await?;
    if !store
        .push_secrets(&name)
        .await?
        .iter()
        .any(|s| s.value == seed.secret)
    {
        let secret = PushSecret {
            id: format!("ps_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            value: seed.secret.clone(),
            created_at: at,
        };
        match store
            .add_push_secret(&name, &secret, MAX_LIVE_SECRETS)
            .await?
        {
            SecretAdd::Added => {}
            SecretAdd::TooMany => {
                return Err(SeedError::Invalid(format!(
                    "{name} already has two push secrets; retire one first"
                )));
            }
            SecretAdd::NoSuchDomain => {
                return Err(SeedError::Invalid(format!("{name} vanished while seeding")));
            }
        }
    }
    let password_hash = hash_password_off_thread(&seed.password)
        .await
        .map_err(|e| SeedError::Invalid(e.to_string()))?;
    // Created, or its password reset and enabled: a write that loses a race is read again.
    for _ in 0..5 {
        let written = match store.account(&seed.account).await? {
            Some(existing) => matches!(
                store
                    .update_account(&Account {
                        password_hash: password_hash.clone(),
                        enabled: true,
                        ..existing
                    })
                    .await?,
                AccountUpdate::Updated(_)
            ),
            None => {
                store
                    .create_account(&Account {
                        address: seed.account.clone(),
                        password_hash: password_hash.clone(),
                        enabled: true,
                        display_name: None,
                        pushed_folders: Vec::new(),
                        created_at: at,
                        revision: 0,
                        quota_bytes: None,
                        sender_aliases: Vec::new(),
                        filing_rules: Vec::new(),
                    })
                    .await?
            }
        };
        if written {
            store.create_default_folders(&seed.account, at).await?;
            return Ok(());
        }
    }
    Err(SeedError::Invalid(format!(
        "{} is being changed by others; try again",
        seed.account
    )))
}
