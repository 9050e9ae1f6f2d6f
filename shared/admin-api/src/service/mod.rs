//! The admin API's logic: bearer-token authentication and scopes, domains, push secrets,
//! accounts, pushed folders, Integrated Accounts, tokens and the audit trail. Methods take
//! checked input and return typed results or an [`AdminError`]; the router turns them into
//! views and statuses.

mod accounts;
mod domains;
mod integrated;
mod mailboxes;
mod rules;
mod tokens;

use std::sync::Arc;

use rand::Rng;
use sha2::{Digest, Sha256};
use tracing::info;

use pushmail_core::types::{
    Account, Address, AdminToken, AuditEntry, Domain, DomainName, Link, TokenScope, now,
};
use pushmail_push::notifier::Notifier;
use pushmail_push::service::PushService;
use pushmail_store::Store;

use crate::error::{AdminError, AdminResult};
use crate::input::{parse_address, parse_domain};

pub use accounts::CreatedAccount;
pub use integrated::NoticeStatus;

const TOKEN_PREFIX: &str = "pma_";

/// Who is asking: an authenticated admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub scope: TokenScope,
}

impl Principal {
    fn require_server(&self) -> AdminResult<()> {
        match self.scope {
            TokenScope::Server => Ok(()),
            TokenScope::Domain(_) => Err(AdminError::forbidden("this needs a server-wide token")),
        }
    }

    fn require_domain(&self, domain: &DomainName) -> AdminResult<()> {
        if self.scope.allows_domain(domain) {
            Ok(())
        } else {
            Err(AdminError::forbidden(format!(
                "this token is not scoped to {domain}"
            )))
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::thread_rng().fill(buffer.as_mut_slice());
    hex::encode(buffer)
}

fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equal-length hex strings compared without an early exit.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub struct AdminService {
    store: Arc<dyn Store>,
    push: Arc<PushService>,
    notifier: Arc<dyn Notifier>,
    /// Reads the public half of a DKIM key from its reference; only where keys are readable.
    dkim_records: Option<DkimRecords>,
}

/// The TXT record value of the DKIM key a reference names, or why it cannot be read. The
/// process that signs has one (the SMTP crate's key reader); the admin Lambda has none: on
/// AWS, SES Easy DKIM publishes a domain's records.
pub type DkimRecords = Arc<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

impl AdminService {
    pub fn new(store: Arc<dyn Store>, push: Arc<PushService>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            store,
            push,
            notifier,
            dkim_records: None,
        }
    }

    /// Answers `GET /admin/domains/{domain}/dkim-record` with `records`.
    pub fn with_dkim_records(mut self, records: Option<DkimRecords>) -> Self {
        self.dkim_records = records;
        self
    }

    /// Creates a token; its plaintext (`pma_<id>.<secret>`) exists only in this answer.
    pub async fn issue_token(
        &self,
        scope: TokenScope,
        label: &str,
    ) -> AdminResult<(AdminToken, String)> {
        let id = random_hex(8);
        let secret = random_hex(32);
        let token = AdminToken {
            id: id.clone(),
            secret_hash: token_hash(&secret),
            scope,
            label: label.to_owned(),
            created_at: now(),
        };
        self.store.put_token(&token).await?;
        Ok((token, format!("{TOKEN_PREFIX}{id}.{secret}")))
    }

    /// Checks an `Authorization` header's value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> AdminResult<Principal> {
        let missing = || AdminError::unauthorized("send `Authorization: Bearer <admin token>`");
        let value = authorization.ok_or_else(missing)?;
        let (scheme, credential) = value.split_once(' ').ok_or_else(missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(missing());
        }
        let bad = || AdminError::unauthorized("the admin token is not valid");
        let (id, secret) = credential
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .filter(|(id, secret)| {
                id.len() == 16
                    && secret.len() == 64
                    && id
                        .bytes()
                        .chain(secret.bytes())
                        .all(|b| b.is_ascii_hexdigit())
            })
            .ok_or_else(bad)?;
        let token = self.store.token(id).await?.ok_or_else(bad)?;
        if !constant_time_eq(&token.secret_hash, &token_hash(secret)) {
            return Err(bad());
        }
        Ok(Principal {
            token_id: token.id,
            scope: token.scope,
        })
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        domain: Option<&DomainName>,
    ) -> AdminResult<()> {
        let entry = AuditEntry {
            id: random_hex(8),
            at: now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            domain: domain.cloned(),
        };
        info!(actor, action, target, "admin change");
        self.store.record_audit(&entry).await?;
        Ok(())
    }

    /// The domain named by a path segment, if the token may see it.
    async fn existing_domain(&self, who: &Principal, raw: &str) -> AdminResult<Domain> {
        let name = parse_domain(raw)?;
        who.require_domain(&name)?;
        self.store
            .domain(&name)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("no domain {name}")))
    }

    /// The address named by a path segment, if the token may see its domain.
    fn account_address(&self, who: &Principal, raw: &str) -> AdminResult<Address> {
        let address = parse_address(raw)?;
        who.require_domain(&address.domain())?;
        Ok(address)
    }

    async fn existing_account(&self, who: &Principal, raw: &str) -> AdminResult<Account> {
        let address = self.account_address(who, raw)?;
        self.store
            .account(&address)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("no account {address}")))
    }

    async fn live_link(&self, who: &Principal, raw: &str) -> AdminResult<Link> {
        let address = self.account_address(who, raw)?;
        self.store
            .link(&address)
            .await?
            .filter(Link::is_linked)
            .ok_or_else(|| AdminError::not_found(format!("{address} is not an integrated account")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq("abcd", "abcd"));
        assert!(!constant_time_eq("abcd", "abce"));
        assert!(!constant_time_eq("abcd", "abc"));
    }
}
