//! Accounts, their kept mail and pushed folders, and the account's own self-service.

use rand::Rng;
use rand::distributions::Alphanumeric;

use pushmail_core::password::hash_password_off_thread;
use pushmail_core::types::{Account, Address, Page, StoredMail, now};
use pushmail_store::credentials::{CredentialError, check_credentials};
use pushmail_store::{AccountDelete, AccountUpdate, Surface};

use super::{AdminService, NoticeStatus, Principal};
use crate::error::{AdminError, AdminResult};
use crate::input::{
    AccountPatch, ListParams, NewAccount, PushedFolders, check_folders, check_password,
    check_quota, check_text,
};

const GENERATED_PASSWORD_CHARS: usize = 20;
/// Tries of a read-modify-write of an account that others keep changing.
const MODIFY_RETRIES: usize = 5;

/// A new account, with the password pushmail generated for it (shown only in this answer).
#[derive(Debug)]
pub struct CreatedAccount {
    pub account: Account,
    pub generated_password: Option<String>,
}

impl AdminService {
    pub async fn create_account(
        &self,
        who: &Principal,
        raw_domain: &str,
        input: NewAccount,
    ) -> AdminResult<CreatedAccount> {
        let domain = self.existing_domain(who, raw_domain).await?;
        let full = if input.address.contains('@') {
            input.address.clone()
        } else {
            format!("{}@{}", input.address, domain.name)
        };
        let address = Address::parse(&full)
            .map_err(|e| AdminError::invalid(format!("field `address`: {}", e.0)))?;
        if address.domain() != domain.name {
            return Err(AdminError::invalid(format!(
                "field `address` must be an address of {}",
                domain.name
            )));
        }
        let (password, generated) = match input.password {
            Some(password) => {
                check_password(&password)?;
                (password, false)
            }
            None => {
                let password: String = rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(GENERATED_PASSWORD_CHARS)
                    .map(char::from)
                    .collect();
                (password, true)
            }
        };
        if let Some(name) = &input.display_name {
            check_text("display_name", name, 256)?;
        }
        let pushed_folders = check_folders(input.pushed_folders.as_deref().unwrap_or_default())?;
        let quota_bytes = input.quota_bytes.map(check_quota).transpose()?;
        let sender_aliases = sender_aliases(&address, input.sender_aliases.as_deref())?;
        let account = Account {
            address: address.clone(),
            password_hash: hash_password_off_thread(&password)
                .await
                .map_err(AdminError::from)?,
            enabled: input.enabled.unwrap_or(true),
            display_name: input.display_name,
            pushed_folders,
            created_at: now(),
            revision: 0,
            quota_bytes,
            sender_aliases: sender_aliases.unwrap_or_default(),
            filing_rules: Vec::new(),
        };
        if !self.store.create_account(&account).await? {
            return Err(AdminError::conflict(format!("account {address} exists")));
        }
        self.store
            .create_default_folders(&address, account.created_at)
            .await?;
        self.audit(
            &who.token_id,
            "account.create",
            address.as_str(),
            Some(&domain.name),
        )
        .await?;
        Ok(CreatedAccount {
            account,
            generated_password: generated.then_some(password),
        })
    }

    pub async fn list_accounts(
        &self,
        who: &Principal,
        raw_domain: &str,
        params: &ListParams,
    ) -> AdminResult<Page<Account>> {
        let domain = self.existing_domain(who, raw_domain).await?;
        if params.activation.is_some() {
            return Err(AdminError::invalid(
                "parameter `activation` applies to integrated accounts only",
            ));
        }
        Ok(self
            .store
            .list_accounts(
                &domain.name,
                params.prefix()?.as_deref(),
                params.cursor.as_deref(),
                params.limit()?,
            )
            .await?)
    }

    pub async fn account(&self, who: &Principal, raw: &str) -> AdminResult<Account> {
        self.existing_account(who, raw).await
    }

    pub async fn update_account(
        &self,
        who: &Principal,
        raw: &str,
        patch: AccountPatch,
    ) -> AdminResult<Account> {
        let address = self.account_address(who, raw)?;
        if let Some(password) = &patch.password {
            check_password(password)?;
        }
        if let Some(Some(name)) = &patch.display_name {
            check_text("display_name", name, 256)?;
        }
        if let Some(Some(quota)) = patch.quota_bytes {
            check_quota(quota)?;
        }
        let aliases = sender_aliases(&address, patch.sender_aliases.as_deref())?;
        // Hashed once, before the record is read, so the read-modify-write below is short.
        let password_hash = match &patch.password {
            Some(password) => Some(hash_password_off_thread(password).await?),
            None => None,
        };
        let account = self
            .modify_account(&address, |account| {
                if let Some(hash) = &password_hash {
                    account.password_hash = hash.clone();
                }
                if let Some(enabled) = patch.enabled {
                    account.enabled = enabled;
                }
                if let Some(name) = &patch.display_name {
                    account.display_name = name.clone();
                }
                if let Some(quota) = patch.quota_bytes {
                    account.quota_bytes = quota;
                }
                if let Some(aliases) = &aliases {
                    account.sender_aliases = aliases.clone();
                }
                Ok(())
            })
            .await?;
        self.audit(
            &who.token_id,
            "account.update",
            account.address.as_str(),
            Some(&address.domain()),
        )
        .await?;
        Ok(account)
    }

    /// Applies `change` to the stored account and writes it if nobody wrote it meanwhile;
    /// otherwise reads it again and reapplies the change, a few times.
    pub(super) async fn modify_account(
        &self,
        address: &Address,
        mut change: impl FnMut(&mut Account) -> AdminResult<()>,
    ) -> AdminResult<Account> {
        for _ in 0..MODIFY_RETRIES {
            let mut account = self
                .store
                .account(address)
                .await?
                .ok_or_else(|| AdminError::not_found(format!("no account {address}")))?;
            change(&mut account)?;
            match self.store.update_account(&account).await? {
                AccountUpdate::Updated(account) => return Ok(account),
                AccountUpdate::NotFound => {
                    return Err(AdminError::not_found(format!("no account {address}")));
                }
                AccountUpdate::Conflict => continue,
            }
        }
        Err(AdminError::conflict(format!(
            "account {address} is being changed by others; try again"
        )))
    }

    /// Deletes the account; if it was integrated, tells the push service (the notice's fate).
    pub async fn delete_account(
        &self,
        who: &Principal,
        raw: &str,
    ) -> AdminResult<Option<NoticeStatus>> {
        let address = self.account_address(who, raw)?;
        let AccountDelete::Deleted { live_link } = self.store.delete_account(&address).await?
        else {
            return Err(AdminError::not_found(format!("no account {address}")));
        };
        let domain = address.domain();
        self.audit(
            &who.token_id,
            "account.delete",
            address.as_str(),
            Some(&domain),
        )
        .await?;
        Ok(match live_link {
            Some(link) => Some(self.send_unlinked(&link, "account_deleted").await?),
            None => None,
        })
    }

    /// System mail kept for the account (by the local process when no mail service is set).
    pub async fn account_mail(
        &self,
        who: &Principal,
        raw: &str,
        params: &ListParams,
    ) -> AdminResult<Vec<StoredMail>> {
        let address = self.account_address(who, raw)?;
        if params.cursor.is_some() || params.activation.is_some() || params.prefix.is_some() {
            return Err(AdminError::invalid("this listing takes only `limit`"));
        }
        Ok(self.store.mails(&address, params.limit()?).await?)
    }

    pub async fn pushed_folders(&self, who: &Principal, raw: &str) -> AdminResult<Vec<String>> {
        Ok(self.existing_account(who, raw).await?.pushed_folders)
    }

    pub async fn set_pushed_folders(
        &self,
        who: &Principal,
        raw: &str,
        input: PushedFolders,
    ) -> AdminResult<Vec<String>> {
        let address = self.account_address(who, raw)?;
        let folders = check_folders(&input.folders)?;
        let account = self
            .modify_account(&address, |account| {
                account.pushed_folders = folders.clone();
                Ok(())
            })
            .await?;
        self.folders_changed(&account, &who.token_id).await?;
        Ok(account.pushed_folders)
    }

    async fn folders_changed(&self, account: &Account, actor: &str) -> AdminResult<()> {
        self.audit(
            actor,
            "account.pushed_folders",
            account.address.as_str(),
            Some(&account.address.domain()),
        )
        .await
    }

    /// Self-service: the account's own address and password (HTTP Basic), rate limited as the
    /// Subscribe URL's credential checks are.
    pub async fn authenticate_account(
        &self,
        address: &str,
        password: &str,
        source: Option<&str>,
    ) -> AdminResult<Account> {
        let bad = || AdminError::unauthorized("unknown account or wrong password");
        let address = Address::parse(address).map_err(|_| bad())?;
        let checked = check_credentials(
            self.store.as_ref(),
            Surface::SelfService,
            &address,
            password,
            source,
            now(),
        )
        .await;
        match checked {
            Ok(account) if account.enabled => Ok(account),
            Ok(_) => Err(AdminError::forbidden("this account is disabled")),
            Err(CredentialError::BadCredentials) => Err(bad()),
            Err(error @ (CredentialError::RateLimited { .. } | CredentialError::Busy)) => {
                Err(AdminError::RateLimited {
                    retry_after_secs: error.retry_after_secs().unwrap_or(1),
                    detail: error.to_string(),
                })
            }
            Err(CredentialError::Store(error)) => Err(error.into()),
        }
    }

    /// Self-service: the account changes its own pushed folders, with the password it was
    /// checked with. The change applies only while that check still stands: an admin who
    /// disables the account or changes its password meanwhile wins, and is never undone.
    pub async fn set_own_pushed_folders(
        &self,
        checked: Account,
        input: PushedFolders,
    ) -> AdminResult<Vec<String>> {
        let folders = check_folders(&input.folders)?;
        let account = self
            .modify_own_account(&checked, |account| {
                account.pushed_folders = folders.clone();
            })
            .await?;
        self.folders_changed(&account, &format!("self:{}", account.address))
            .await?;
        Ok(account.pushed_folders)
    }
}

impl AdminService {
    /// Self-service: applies `change` to the account only while the password check it was
    /// made with still stands (an admin's disabling or new password meanwhile wins).
    pub(super) async fn modify_own_account(
        &self,
        checked: &Account,
        change: impl Fn(&mut Account),
    ) -> AdminResult<Account> {
        self.modify_account(&checked.address, |account| {
            if !account.enabled {
                return Err(AdminError::forbidden("this account is disabled"));
            }
            if !account.still_admits(checked) {
                return Err(AdminError::unauthorized(
                    "unknown account or wrong password",
                ));
            }
            change(account);
            Ok(())
        })
        .await
    }
}

/// The sender aliases given in a request, checked by the rule on `Account`.
fn sender_aliases(account: &Address, raw: Option<&[String]>) -> AdminResult<Option<Vec<Address>>> {
    raw.map(|raw| {
        Account::check_sender_aliases(account, raw)
            .map_err(|why| AdminError::invalid(format!("field `sender_aliases`: {why}")))
    })
    .transpose()
}
