//! The admin API's logic: bearer-token authentication and scopes, domains, push secrets,
//! accounts, pushed folders, integrated accounts, tokens and the audit trail. The HTTP adapter
//! (functions/admin) only maps routes onto these methods.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use pushmail_core::password::hash_password_off_thread;
use pushmail_core::protocol::MAX_LIVE_SECRETS;
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Domain, DomainName,
    Link, Page, PushSecret, ServerSettings, TokenScope,
};
use pushmail_push::credentials::{CredentialError, check_credentials};
use pushmail_push::notifier::{NoticeOutcome, Notifier};
use pushmail_push::service::{Delivery, PushService};
use pushmail_store::{AccountDelete, DomainDelete, LinkQuery, SecretAdd, Store, StoreError};

pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PUSHED_FOLDERS: usize = 64;
const MIN_PASSWORD_CHARS: usize = 8;
const GENERATED_PASSWORD_CHARS: usize = 20;
const TOKEN_PREFIX: &str = "pma_";

/// A refused admin request: HTTP status, stable code, human sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct AdminError {
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
}

impl AdminError {
    fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not_found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", detail)
    }

    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(413, "too_large", detail)
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(415, "unsupported_media_type", detail)
    }

    pub fn body(&self) -> Value {
        json!({"error": self.code, "detail": self.detail})
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => {
                Self::invalid("parameter `cursor` is not a cursor of this listing")
            }
            error => {
                tracing::error!(%error, "store failure");
                Self::new(
                    500,
                    "internal_error",
                    "the server could not complete the request; try again",
                )
            }
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

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

// --- request bodies --------------------------------------------------------------------------

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`: clear it).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSettingsInput {
    pub push_enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub subscribe_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub smtp_server: Option<Option<String>>,
    pub sent_items_alias: Option<String>,
    pub deleted_items_alias: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dkim_selector: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub dkim_key_ref: Option<Option<String>>,
}

/// A new domain: `name` plus any of the settings (serde's `flatten` cannot deny unknown fields,
/// so the name is taken out first and the rest read strictly).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
pub struct NewDomain {
    pub name: String,
    pub settings: DomainSettingsInput,
}

impl TryFrom<Value> for NewDomain {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        let Value::Object(mut fields) = value else {
            return Err("the body must be a JSON object".into());
        };
        let name = match fields.remove("name") {
            Some(Value::String(name)) => name,
            Some(_) => return Err("field `name` must be a string".into()),
            None => return Err("missing field `name`".into()),
        };
        let settings = serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
        Ok(Self { name, settings })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The local part, or the full address in this domain.
    pub address: String,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub enabled: Option<bool>,
    pub pushed_folders: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub password: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushedFolders {
    pub folders: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettingsInput {
    pub push_enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `"server"` or `"domain"`.
    pub scope: String,
    pub domain: Option<String>,
    pub label: Option<String>,
}

/// Listing parameters, as given in the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub activation: Option<String>,
}

impl ListParams {
    fn limit(&self) -> AdminResult<usize> {
        match &self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    AdminError::invalid("parameter `limit` must be a whole number from 1 to 100")
                }),
        }
    }

    fn activation(&self) -> AdminResult<Option<ActivationState>> {
        match self.activation.as_deref() {
            None => Ok(None),
            Some("pending") => Ok(Some(ActivationState::Pending)),
            Some("sent") => Ok(Some(ActivationState::Sent)),
            Some(_) => Err(AdminError::invalid(
                "parameter `activation` must be `pending` or `sent`",
            )),
        }
    }
}

// --- answers ---------------------------------------------------------------------------------

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn domain_view(domain: &Domain) -> Value {
    json!({
        "name": domain.name.as_str(),
        "push_enabled": domain.push_enabled,
        "subscribe_url": domain.subscribe_url,
        "smtp_server": domain.smtp_server,
        "sent_items_alias": domain.sent_items_alias,
        "deleted_items_alias": domain.deleted_items_alias,
        "dkim_selector": domain.dkim_selector,
        "dkim_key_ref": domain.dkim_key_ref,
        "created_at": rfc3339(domain.created_at),
    })
}

fn account_view(account: &Account) -> Value {
    json!({
        "address": account.address.as_str(),
        "enabled": account.enabled,
        "display_name": account.display_name,
        "pushed_folders": account.pushed_folders,
        "created_at": rfc3339(account.created_at),
    })
}

fn link_view(link: &Link) -> Value {
    let callback_host = url::Url::parse(&link.callback)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    json!({
        "address": link.address.as_str(),
        "subscription": link.subscription_id,
        "registration": link.registration,
        "generation": link.generation,
        "device": link.device,
        "callback_host": callback_host,
        "linked_at": rfc3339(link.linked_at),
        "activation": link.activation.as_str(),
    })
}

fn token_view(token: &AdminToken) -> Value {
    let (scope, domain) = match &token.scope {
        TokenScope::Server => ("server", None),
        TokenScope::Domain(domain) => ("domain", Some(domain.as_str())),
    };
    json!({"id": token.id, "scope": scope, "domain": domain, "label": token.label, "created_at": rfc3339(token.created_at)})
}

fn audit_view(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id, "at": rfc3339(entry.at), "actor": entry.actor,
        "action": entry.action, "target": entry.target,
        "domain": entry.domain.as_ref().map(DomainName::as_str),
    })
}

fn page_view<T>(page: &Page<T>, view: impl Fn(&T) -> Value) -> Value {
    json!({"items": page.items.iter().map(view).collect::<Vec<_>>(), "cursor": page.cursor})
}

// --- validation ------------------------------------------------------------------------------

fn parse_domain(raw: &str) -> AdminResult<DomainName> {
    DomainName::parse(raw).map_err(|e| AdminError::invalid(e.0))
}

fn parse_address(raw: &str) -> AdminResult<Address> {
    Address::parse(raw).map_err(|e| AdminError::invalid(e.0))
}

fn check_text(field: &str, value: &str, max_chars: usize) -> AdminResult<()> {
    if value.trim().is_empty()
        || value.chars().count() > max_chars
        || value.chars().any(char::is_control)
    {
        return Err(AdminError::invalid(format!(
            "field `{field}` must be 1 to {max_chars} printable characters"
        )));
    }
    Ok(())
}

fn check_url(field: &str, value: &str) -> AdminResult<()> {
    let ok = value.len() <= 2048
        && url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(AdminError::invalid(format!(
            "field `{field}` must be an http(s) URL"
        )))
    }
}

fn check_host_port(field: &str, value: &str) -> AdminResult<()> {
    let (host, port) = match value.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (value, None),
    };
    let host_ok = DomainName::parse(host).is_ok() || host.parse::<std::net::IpAddr>().is_ok();
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(AdminError::invalid(format!(
            "field `{field}` must be a host name or IP, with an optional :port"
        )))
    }
}

fn check_password(password: &str) -> AdminResult<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&chars) {
        return Err(AdminError::invalid(
            "field `password` must be 8 to 1024 characters",
        ));
    }
    Ok(())
}

fn check_folders(folders: &[String]) -> AdminResult<Vec<String>> {
    if folders.len() > MAX_PUSHED_FOLDERS {
        return Err(AdminError::invalid(
            "field `folders` may hold at most 64 folders",
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for folder in folders {
        check_text("folders", folder, 255)?;
        if folder.eq_ignore_ascii_case("INBOX") {
            return Err(AdminError::invalid(
                "field `folders`: INBOX is always pushed; list only other folders",
            ));
        }
        if !unique.contains(folder) {
            unique.push(folder.clone());
        }
    }
    Ok(unique)
}

fn apply_domain_settings(domain: &mut Domain, input: DomainSettingsInput) -> AdminResult<()> {
    if let Some(enabled) = input.push_enabled {
        domain.push_enabled = enabled;
    }
    if let Some(url) = input.subscribe_url {
        if let Some(url) = &url {
            check_url("subscribe_url", url)?;
        }
        domain.subscribe_url = url;
    }
    if let Some(host) = input.smtp_server {
        if let Some(host) = &host {
            check_host_port("smtp_server", host)?;
        }
        domain.smtp_server = host;
    }
    if let Some(alias) = input.sent_items_alias {
        check_text("sent_items_alias", &alias, 255)?;
        domain.sent_items_alias = alias;
    }
    if let Some(alias) = input.deleted_items_alias {
        check_text("deleted_items_alias", &alias, 255)?;
        domain.deleted_items_alias = alias;
    }
    if let Some(selector) = input.dkim_selector {
        if let Some(selector) = &selector {
            DomainName::parse(selector)
                .map_err(|_| AdminError::invalid("field `dkim_selector` must be DNS labels"))?;
        }
        domain.dkim_selector = selector;
    }
    if let Some(key_ref) = input.dkim_key_ref {
        if let Some(key_ref) = &key_ref {
            check_text("dkim_key_ref", key_ref, 2048)?;
        }
        domain.dkim_key_ref = key_ref;
    }
    Ok(())
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

// --- the service -----------------------------------------------------------------------------

pub struct AdminService {
    store: Arc<dyn Store>,
    push: Arc<PushService>,
    notifier: Arc<dyn Notifier>,
}

impl AdminService {
    pub fn new(store: Arc<dyn Store>, push: Arc<PushService>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            store,
            push,
            notifier,
        }
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
            created_at: pushmail_core::types::now(),
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
            at: pushmail_core::types::now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            domain: domain.cloned(),
        };
        info!(actor, action, target, "admin change");
        self.store.record_audit(&entry).await?;
        Ok(())
    }

    // --- server ------------------------------------------------------------------------------

    pub async fn server_settings(&self, who: &Principal) -> AdminResult<Value> {
        who.require_server()?;
        let settings = self.store.server_settings().await?;
        Ok(json!({"push_enabled": settings.push_enabled}))
    }

    pub async fn set_server_settings(
        &self,
        who: &Principal,
        input: ServerSettingsInput,
    ) -> AdminResult<Value> {
        who.require_server()?;
        let settings = ServerSettings {
            push_enabled: input.push_enabled,
        };
        self.store.put_server_settings(&settings).await?;
        let action = if settings.push_enabled {
            "server.push_on"
        } else {
            "server.push_off"
        };
        self.audit(&who.token_id, action, "server", None).await?;
        Ok(json!({"push_enabled": settings.push_enabled}))
    }

    // --- domains -----------------------------------------------------------------------------

    pub async fn list_domains(&self, who: &Principal) -> AdminResult<Value> {
        let domains = self.store.list_domains().await?;
        let visible: Vec<Value> = domains
            .iter()
            .filter(|d| who.scope.allows_domain(&d.name))
            .map(domain_view)
            .collect();
        Ok(json!({"items": visible}))
    }

    pub async fn create_domain(&self, who: &Principal, input: NewDomain) -> AdminResult<Value> {
        who.require_server()?;
        let name = parse_domain(&input.name)?;
        let mut domain = Domain::new(name.clone(), pushmail_core::types::now());
        apply_domain_settings(&mut domain, input.settings)?;
        if !self.store.create_domain(&domain).await? {
            return Err(AdminError::conflict(format!("domain {name} exists")));
        }
        self.audit(&who.token_id, "domain.create", name.as_str(), Some(&name))
            .await?;
        Ok(domain_view(&domain))
    }

    async fn existing_domain(&self, who: &Principal, raw: &str) -> AdminResult<Domain> {
        let name = parse_domain(raw)?;
        who.require_domain(&name)?;
        self.store
            .domain(&name)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("no domain {name}")))
    }

    pub async fn domain(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        Ok(domain_view(&self.existing_domain(who, raw).await?))
    }

    pub async fn update_domain(
        &self,
        who: &Principal,
        raw: &str,
        input: DomainSettingsInput,
    ) -> AdminResult<Value> {
        let mut domain = self.existing_domain(who, raw).await?;
        apply_domain_settings(&mut domain, input)?;
        if !self.store.update_domain(&domain).await? {
            return Err(AdminError::not_found(format!("no domain {}", domain.name)));
        }
        self.audit(
            &who.token_id,
            "domain.update",
            domain.name.as_str(),
            Some(&domain.name),
        )
        .await?;
        Ok(domain_view(&domain))
    }

    pub async fn delete_domain(&self, who: &Principal, raw: &str) -> AdminResult<()> {
        who.require_server()?;
        let name = parse_domain(raw)?;
        match self.store.delete_domain(&name).await? {
            DomainDelete::Deleted => {
                self.audit(&who.token_id, "domain.delete", name.as_str(), Some(&name))
                    .await
            }
            DomainDelete::NotFound => Err(AdminError::not_found(format!("no domain {name}"))),
            DomainDelete::HasAccounts => Err(AdminError::conflict(format!(
                "domain {name} still has accounts; delete them first"
            ))),
        }
    }

    // --- push secrets ------------------------------------------------------------------------

    pub async fn create_secret(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        let domain = self.existing_domain(who, raw).await?;
        let secret = PushSecret {
            id: format!("ps_{}", random_hex(6)),
            value: random_hex(32),
            created_at: pushmail_core::types::now(),
        };
        match self
            .store
            .add_push_secret(&domain.name, &secret, MAX_LIVE_SECRETS)
            .await?
        {
            SecretAdd::Added => {}
            SecretAdd::NoSuchDomain => {
                return Err(AdminError::not_found(format!("no domain {}", domain.name)));
            }
            SecretAdd::TooMany => {
                return Err(AdminError::conflict(format!(
                    "{} already has {MAX_LIVE_SECRETS} live push secrets; retire one first",
                    domain.name
                )));
            }
        }
        self.audit(
            &who.token_id,
            "secret.create",
            &secret.id,
            Some(&domain.name),
        )
        .await?;
        Ok(
            json!({"id": secret.id, "value": secret.value, "created_at": rfc3339(secret.created_at)}),
        )
    }

    pub async fn list_secrets(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        let domain = self.existing_domain(who, raw).await?;
        let secrets = self.store.push_secrets(&domain.name).await?;
        let items: Vec<Value> = secrets
            .iter()
            .map(|s| json!({"id": s.id, "created_at": rfc3339(s.created_at)}))
            .collect();
        Ok(json!({ "items": items }))
    }

    pub async fn retire_secret(&self, who: &Principal, raw: &str, id: &str) -> AdminResult<()> {
        let domain = self.existing_domain(who, raw).await?;
        if !self.store.retire_push_secret(&domain.name, id).await? {
            return Err(AdminError::not_found(format!(
                "{} has no push secret {id}",
                domain.name
            )));
        }
        self.audit(&who.token_id, "secret.retire", id, Some(&domain.name))
            .await
    }

    // --- accounts ----------------------------------------------------------------------------

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

    pub async fn create_account(
        &self,
        who: &Principal,
        raw_domain: &str,
        input: NewAccount,
    ) -> AdminResult<Value> {
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
        let account = Account {
            address: address.clone(),
            password_hash: hash_password_off_thread(&password)
                .await
                .map_err(|e| AdminError::new(500, "internal_error", e.to_string()))?,
            enabled: input.enabled.unwrap_or(true),
            display_name: input.display_name,
            pushed_folders,
            created_at: pushmail_core::types::now(),
        };
        if !self.store.create_account(&account).await? {
            return Err(AdminError::conflict(format!("account {address} exists")));
        }
        self.audit(
            &who.token_id,
            "account.create",
            address.as_str(),
            Some(&domain.name),
        )
        .await?;
        let mut view = account_view(&account);
        if generated {
            view["password"] = json!(password);
        }
        Ok(view)
    }

    pub async fn list_accounts(
        &self,
        who: &Principal,
        raw_domain: &str,
        params: &ListParams,
    ) -> AdminResult<Value> {
        let domain = self.existing_domain(who, raw_domain).await?;
        if params.activation.is_some() {
            return Err(AdminError::invalid(
                "parameter `activation` applies to integrated accounts only",
            ));
        }
        let page = self
            .store
            .list_accounts(&domain.name, params.cursor.as_deref(), params.limit()?)
            .await?;
        Ok(page_view(&page, account_view))
    }

    pub async fn account(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        Ok(account_view(&self.existing_account(who, raw).await?))
    }

    pub async fn update_account(
        &self,
        who: &Principal,
        raw: &str,
        patch: AccountPatch,
    ) -> AdminResult<Value> {
        let mut account = self.existing_account(who, raw).await?;
        if let Some(password) = &patch.password {
            check_password(password)?;
            account.password_hash = hash_password_off_thread(password)
                .await
                .map_err(|e| AdminError::new(500, "internal_error", e.to_string()))?;
        }
        if let Some(enabled) = patch.enabled {
            account.enabled = enabled;
        }
        if let Some(name) = patch.display_name {
            if let Some(name) = &name {
                check_text("display_name", name, 256)?;
            }
            account.display_name = name;
        }
        if !self.store.update_account(&account).await? {
            return Err(AdminError::not_found(format!(
                "no account {}",
                account.address
            )));
        }
        let domain = account.address.domain();
        self.audit(
            &who.token_id,
            "account.update",
            account.address.as_str(),
            Some(&domain),
        )
        .await?;
        Ok(account_view(&account))
    }

    pub async fn delete_account(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
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
        let notice = match live_link {
            Some(link) => Some(self.send_unlinked(&link, "account_deleted").await?),
            None => None,
        };
        Ok(json!({"status": "deleted", "unlinked_notice": notice}))
    }

    /// System mail kept for the account (by the local process when no mail service is set).
    pub async fn account_mail(
        &self,
        who: &Principal,
        raw: &str,
        params: &ListParams,
    ) -> AdminResult<Value> {
        let address = self.account_address(who, raw)?;
        if params.cursor.is_some() || params.activation.is_some() {
            return Err(AdminError::invalid("this listing takes only `limit`"));
        }
        let mails = self.store.mails(&address, params.limit()?).await?;
        let items: Vec<Value> = mails
            .iter()
            .map(|m| json!({"id": m.id, "to": m.to.as_str(), "subject": m.subject, "body": m.body, "at": rfc3339(m.at)}))
            .collect();
        Ok(json!({ "items": items }))
    }

    // --- pushed folders ----------------------------------------------------------------------

    pub async fn pushed_folders(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        let account = self.existing_account(who, raw).await?;
        Ok(json!({"folders": account.pushed_folders}))
    }

    pub async fn set_pushed_folders(
        &self,
        who: &Principal,
        raw: &str,
        input: PushedFolders,
    ) -> AdminResult<Value> {
        let account = self.existing_account(who, raw).await?;
        self.store_folders(account, input, &who.token_id).await
    }

    async fn store_folders(
        &self,
        mut account: Account,
        input: PushedFolders,
        actor: &str,
    ) -> AdminResult<Value> {
        account.pushed_folders = check_folders(&input.folders)?;
        if !self.store.update_account(&account).await? {
            return Err(AdminError::not_found(format!(
                "no account {}",
                account.address
            )));
        }
        let domain = account.address.domain();
        self.audit(
            actor,
            "account.pushed_folders",
            account.address.as_str(),
            Some(&domain),
        )
        .await?;
        Ok(json!({"folders": account.pushed_folders}))
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
        match check_credentials(
            self.store.as_ref(),
            &address,
            password,
            source,
            pushmail_core::types::now(),
        )
        .await
        {
            Ok(account) if account.enabled => Ok(account),
            Ok(_) => Err(AdminError::forbidden("this account is disabled")),
            Err(CredentialError::BadCredentials) => Err(bad()),
            Err(error @ CredentialError::RateLimited { retry_after_secs }) => Err(AdminError {
                retry_after_secs: Some(retry_after_secs),
                ..AdminError::new(429, "rate_limited", error.to_string())
            }),
            Err(CredentialError::Store(error)) => Err(error.into()),
        }
    }

    pub async fn set_own_pushed_folders(
        &self,
        account: Account,
        input: PushedFolders,
    ) -> AdminResult<Value> {
        let actor = format!("self:{}", account.address);
        self.store_folders(account, input, &actor).await
    }

    // --- integrated accounts -----------------------------------------------------------------

    pub async fn list_integrated(
        &self,
        who: &Principal,
        raw_domain: Option<&str>,
        params: &ListParams,
    ) -> AdminResult<Value> {
        let domain = match raw_domain {
            Some(raw) => Some(self.existing_domain(who, raw).await?.name),
            None => {
                who.require_server()?;
                None
            }
        };
        let query = LinkQuery {
            domain,
            activation: params.activation()?,
            cursor: params.cursor.clone(),
            limit: params.limit()?,
        };
        let page = self.store.list_links(&query).await?;
        Ok(page_view(&page, link_view))
    }

    async fn live_link(&self, who: &Principal, raw: &str) -> AdminResult<Link> {
        let address = self.account_address(who, raw)?;
        self.store
            .link(&address)
            .await?
            .filter(Link::is_linked)
            .ok_or_else(|| AdminError::not_found(format!("{address} is not an integrated account")))
    }

    pub async fn integrated(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        Ok(link_view(&self.live_link(who, raw).await?))
    }

    /// Unlinks an integrated account and tells the push service once, best effort.
    pub async fn remove_integrated(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        let address = self.account_address(who, raw)?;
        let Some(link) = self
            .store
            .remove_link(&address, pushmail_core::types::now())
            .await?
        else {
            return Err(AdminError::not_found(format!(
                "{address} is not an integrated account"
            )));
        };
        let domain = address.domain();
        self.audit(
            &who.token_id,
            "integration.remove",
            address.as_str(),
            Some(&domain),
        )
        .await?;
        let notice = self.send_unlinked(&link, "removed_by_admin").await?;
        Ok(json!({"status": "unlinked", "unlinked_notice": notice}))
    }

    async fn send_unlinked(&self, link: &Link, reason: &str) -> AdminResult<&'static str> {
        let Some(secret) = self
            .store
            .push_secrets(&link.address.domain())
            .await?
            .into_iter()
            .next()
        else {
            warn!(address = %link.address, "no push secret to sign the UNLINKED notice");
            return Ok("not_sent_no_secret");
        };
        let body = json!({
            "type": "UNLINKED",
            "id": format!("unl_{}", link.subscription_id),
            "subscription": link.subscription_id,
            "registration": link.registration,
            "email": link.address.as_str(),
            "reason": reason,
            "unlinked": rfc3339(pushmail_core::types::now()),
        });
        let outcome = self
            .notifier
            .notify(
                &link.callback,
                secret.value.as_bytes(),
                body.to_string().as_bytes(),
            )
            .await;
        if outcome.delivered() {
            Ok("delivered")
        } else {
            warn!(address = %link.address, ?outcome, "UNLINKED notice not delivered");
            Ok(match outcome {
                NoticeOutcome::Answered(_) => "refused",
                NoticeOutcome::Unreachable(_) => "unreachable",
            })
        }
    }

    pub async fn resend_activation(&self, who: &Principal, raw: &str) -> AdminResult<Value> {
        let link = self.live_link(who, raw).await?;
        let now = pushmail_core::types::now();
        let job = ActivationJob {
            subscription_id: link.subscription_id.clone(),
            address: link.address.clone(),
            device: link.device.clone(),
            linked_at: link.linked_at,
            attempts: 0,
            not_before: now,
        };
        if !self.store.requeue_activation(&job).await? {
            return Err(AdminError::not_found(format!(
                "{} is not an integrated account",
                link.address
            )));
        }
        let domain = link.address.domain();
        self.audit(
            &who.token_id,
            "integration.resend_activation",
            link.address.as_str(),
            Some(&domain),
        )
        .await?;
        let activation = match self
            .push
            .deliver_activation(&link.subscription_id, now)
            .await?
        {
            Delivery::Sent => "sent",
            _ => "pending",
        };
        Ok(json!({ "activation": activation }))
    }

    // --- tokens and audit --------------------------------------------------------------------

    pub async fn create_token(&self, who: &Principal, input: NewToken) -> AdminResult<Value> {
        who.require_server()?;
        let scope = match (input.scope.as_str(), input.domain.as_deref()) {
            ("server", None) => TokenScope::Server,
            ("domain", Some(raw)) => {
                let name = parse_domain(raw)?;
                if self.store.domain(&name).await?.is_none() {
                    return Err(AdminError::not_found(format!("no domain {name}")));
                }
                TokenScope::Domain(name)
            }
            _ => {
                return Err(AdminError::invalid(
                    "field `scope` must be \"server\" (without `domain`) or \"domain\" (with `domain`)",
                ));
            }
        };
        let label = input.label.unwrap_or_default();
        if !label.is_empty() {
            check_text("label", &label, 128)?;
        }
        let (token, plaintext) = self.issue_token(scope, &label).await?;
        self.audit(&who.token_id, "token.create", &token.id, None)
            .await?;
        let mut view = token_view(&token);
        view["token"] = json!(plaintext);
        Ok(view)
    }

    pub async fn list_tokens(&self, who: &Principal) -> AdminResult<Value> {
        who.require_server()?;
        let tokens = self.store.list_tokens().await?;
        Ok(json!({"items": tokens.iter().map(token_view).collect::<Vec<_>>()}))
    }

    pub async fn delete_token(&self, who: &Principal, id: &str) -> AdminResult<()> {
        who.require_server()?;
        if !self.store.delete_token(id).await? {
            return Err(AdminError::not_found(format!("no token {id}")));
        }
        self.audit(&who.token_id, "token.delete", id, None).await
    }

    pub async fn domain_audit(
        &self,
        who: &Principal,
        raw: &str,
        params: &ListParams,
    ) -> AdminResult<Value> {
        let name = parse_domain(raw)?;
        who.require_domain(&name)?;
        self.audit_page(Some(&name), params).await
    }

    pub async fn server_audit(&self, who: &Principal, params: &ListParams) -> AdminResult<Value> {
        who.require_server()?;
        self.audit_page(None, params).await
    }

    async fn audit_page(
        &self,
        domain: Option<&DomainName>,
        params: &ListParams,
    ) -> AdminResult<Value> {
        if params.activation.is_some() {
            return Err(AdminError::invalid(
                "parameter `activation` applies to integrated accounts only",
            ));
        }
        let page = self
            .store
            .list_audit(domain, params.cursor.as_deref(), params.limit()?)
            .await?;
        Ok(page_view(&page, audit_view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_values() {
        for ok in [
            "mail.example.com",
            "mail.example.com:587",
            "192.0.2.1",
            "192.0.2.1:25",
        ] {
            assert!(check_host_port("smtp_server", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "mail example",
            "mail.example.com:0",
            "mail.example.com:99999",
            "https://x",
        ] {
            assert!(check_host_port("smtp_server", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn folders_are_checked_and_deduplicated() {
        let folders = vec![
            "Work".to_owned(),
            "Work".to_owned(),
            "Lists/Rust".to_owned(),
        ];
        assert_eq!(check_folders(&folders).unwrap(), vec!["Work", "Lists/Rust"]);
        assert!(check_folders(&["inbox".to_owned()]).is_err());
        assert!(check_folders(&["".to_owned()]).is_err());
        assert!(
            check_folders(
                &vec!["x".to_owned(); 65]
                    .iter()
                    .enumerate()
                    .map(|(i, _)| format!("f{i}"))
                    .collect::<Vec<_>>()
            )
            .is_err()
        );
    }

    #[test]
    fn limits_and_filters_parse() {
        let params = |limit: Option<&str>, activation: Option<&str>| ListParams {
            cursor: None,
            limit: limit.map(str::to_owned),
            activation: activation.map(str::to_owned),
        };
        assert_eq!(params(None, None).limit().unwrap(), DEFAULT_PAGE);
        assert_eq!(params(Some("100"), None).limit().unwrap(), 100);
        for bad in ["0", "101", "-1", "ten"] {
            assert!(params(Some(bad), None).limit().is_err(), "{bad}");
        }
        assert_eq!(
            params(None, Some("sent")).activation().unwrap(),
            Some(ActivationState::Sent)
        );
        assert!(params(None, Some("done")).activation().is_err());
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq("abcd", "abcd"));
        assert!(!constant_time_eq("abcd", "abce"));
        assert!(!constant_time_eq("abcd", "abc"));
    }
}
