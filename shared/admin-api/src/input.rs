//! What the admin API accepts: request bodies and query parameters, and the checks every
//! value passes before it reaches the store. Bad input is refused here, before anything changes.

use pushmail_core::folder::FolderName;
use pushmail_core::types::{ActivationState, Address, Domain, DomainName};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{AdminError, AdminResult};

pub const MAX_PAGE: usize = 100;
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PUSHED_FOLDERS: usize = 64;
const MIN_PASSWORD_CHARS: usize = 8;

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
    pub quota_bytes: Option<u64>,
    pub sender_aliases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub password: Option<String>,
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: Option<Option<String>>,
    /// A new quota; `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    pub quota_bytes: Option<Option<u64>>,
    /// Replaces the sender aliases (`[]` removes them).
    pub sender_aliases: Option<Vec<String>>,
}

/// An account's filing rules, replaced whole (folder names checked as they are read).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingRules {
    pub rules: Vec<pushmail_core::rules::FilingRule>,
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
    /// Accounts only: addresses that start with this.
    pub prefix: Option<String>,
}

/// The longest `prefix` taken: an address's local part is at most 64 octets.
const MAX_PREFIX: usize = 64;

impl ListParams {
    pub fn limit(&self) -> AdminResult<usize> {
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

    /// The address prefix to search for, lowercase as addresses are kept; none if empty.
    pub fn prefix(&self) -> AdminResult<Option<String>> {
        let Some(raw) = self
            .prefix
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        else {
            return Ok(None);
        };
        if raw.len() > MAX_PREFIX || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(AdminError::invalid(
                "parameter `prefix` must be at most 64 octets, without spaces or control characters",
            ));
        }
        Ok(Some(raw.to_lowercase()))
    }

    /// Refuses `prefix` where the listing is not of accounts.
    pub fn no_prefix(&self) -> AdminResult<()> {
        match self.prefix {
            Some(_) => Err(AdminError::invalid(
                "parameter `prefix` applies to a domain's accounts only",
            )),
            None => Ok(()),
        }
    }

    pub fn activation(&self) -> AdminResult<Option<ActivationState>> {
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

pub fn parse_domain(raw: &str) -> AdminResult<DomainName> {
    DomainName::parse(raw).map_err(|e| AdminError::invalid(e.0))
}

pub fn parse_address(raw: &str) -> AdminResult<Address> {
    Address::parse(raw).map_err(|e| AdminError::invalid(e.0))
}

pub fn check_text(field: &str, value: &str, max_chars: usize) -> AdminResult<()> {
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

pub fn check_url(field: &str, value: &str) -> AdminResult<()> {
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

pub fn check_host_port(field: &str, value: &str) -> AdminResult<()> {
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

/// The largest quota one may set: 1 PiB, far past any mailbox, well inside every counter.
const MAX_QUOTA_BYTES: u64 = 1 << 50;

/// A mailbox quota: 1 byte to 1 PiB.
pub fn check_quota(quota: u64) -> AdminResult<u64> {
    if (1..=MAX_QUOTA_BYTES).contains(&quota) {
        Ok(quota)
    } else {
        Err(AdminError::invalid(
            "field `quota_bytes` must be a whole number of bytes from 1 to 2^50",
        ))
    }
}

pub fn check_password(password: &str) -> AdminResult<()> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&chars) {
        return Err(AdminError::invalid(
            "field `password` must be 8 to 1024 characters",
        ));
    }
    Ok(())
}

/// Pushed folders: each a valid folder name ([`FolderName`]) other than INBOX, which is always
/// pushed; duplicates dropped, order kept.
pub fn check_folders(folders: &[String]) -> AdminResult<Vec<String>> {
    if folders.len() > MAX_PUSHED_FOLDERS {
        return Err(AdminError::invalid(
            "field `folders` may hold at most 64 folders",
        ));
    }
    let mut unique: Vec<String> = Vec::new();
    for folder in folders {
        let name = FolderName::parse(folder)
            .map_err(|e| AdminError::invalid(format!("field `folders`: {}", e.0)))?;
        if name.is_inbox() {
            return Err(AdminError::invalid(
                "field `folders`: INBOX is always pushed; list only other folders",
            ));
        }
        if !unique.iter().any(|f| f == name.as_str()) {
            unique.push(name.into());
        }
    }
    Ok(unique)
}

pub fn apply_domain_settings(domain: &mut Domain, input: DomainSettingsInput) -> AdminResult<()> {
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
        for bad in ["..", "/", "/etc/passwd", "INBOX ", "INBOX/", "a//b"] {
            assert!(check_folders(&[bad.to_owned()]).is_err(), "{bad}");
        }
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
            prefix: None,
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

        let prefix = |text: &str| ListParams {
            prefix: Some(text.to_owned()),
            ..ListParams::default()
        };
        assert_eq!(prefix(" Dan ").prefix().unwrap().as_deref(), Some("dan"));
        assert_eq!(prefix("").prefix().unwrap(), None);
        for bad in ["a b".to_owned(), "a\u{7}".to_owned(), "x".repeat(65)] {
            assert!(prefix(&bad).prefix().is_err(), "{bad:?}");
        }
        assert!(prefix("a").no_prefix().is_err());
        assert!(ListParams::default().no_prefix().is_ok());
    }
}
