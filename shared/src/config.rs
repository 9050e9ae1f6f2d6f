//! Settings read from the environment (every variable is listed in the README).

use std::sync::Arc;

use std::time::Duration;

use crate::admin::AdminService;
use crate::aws::AwsContext;
use crate::notifier::HttpNotifier;
use crate::service::{PushService, ServiceSettings};

pub const DEFAULT_TABLE: &str = "pushmail";
pub const DEFAULT_MAIL_FROM: &str = "pushmail <push@pushmail.test>";
/// An inline, best-effort notice (UNLINKED) waits at most this long for the push service.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `PUSHMAIL_TABLE`: the DynamoDB table.
    pub table: String,
    /// `PUSHMAIL_MAIL_FROM`: the sender of system mail; its domain must be a verified SES identity.
    pub mail_from: String,
    /// `PUSHMAIL_LOCAL_MODE` (1/true): allow http callbacks to loopback hosts.
    pub local_mode: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the environment; `local_mode_default` applies when `PUSHMAIL_LOCAL_MODE` is unset.
    pub fn from_env(local_mode_default: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), local_mode_default)
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        local_mode_default: bool,
    ) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let local_mode = match non_empty("PUSHMAIL_LOCAL_MODE")
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => local_mode_default,
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => true,
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => false,
            Some(v) => {
                return Err(ConfigError(format!(
                    "PUSHMAIL_LOCAL_MODE must be 1 or 0, not `{v}`"
                )));
            }
        };
        Ok(Self {
            table: non_empty("PUSHMAIL_TABLE").unwrap_or_else(|| DEFAULT_TABLE.to_owned()),
            mail_from: non_empty("PUSHMAIL_MAIL_FROM")
                .unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned()),
            local_mode,
        })
    }

    /// The push service on DynamoDB and SES, as this configuration describes.
    pub async fn push_service(&self) -> PushService {
        let aws = AwsContext::from_env().await;
        self.push_service_on(&aws)
    }

    fn push_service_on(&self, aws: &AwsContext) -> PushService {
        PushService::new(
            Arc::new(aws.dynamo_store(&self.table)),
            Arc::new(aws.ses_mailer(&self.mail_from)),
            ServiceSettings {
                local_mode: self.local_mode,
            },
        )
    }

    /// The admin service (and the push service it resends activation mails through).
    pub async fn admin_service(&self) -> AdminService {
        let aws = AwsContext::from_env().await;
        AdminService::new(
            Arc::new(aws.dynamo_store(&self.table)),
            Arc::new(self.push_service_on(&aws)),
            Arc::new(HttpNotifier::new(NOTICE_TIMEOUT)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::from_lookup(|_| None, false).unwrap();
        assert_eq!(config.table, DEFAULT_TABLE);
        assert!(!config.local_mode);
        let config = Config::from_lookup(
            |name| match name {
                "PUSHMAIL_TABLE" => Some("t1".into()),
                "PUSHMAIL_LOCAL_MODE" => Some("1".into()),
                _ => None,
            },
            false,
        )
        .unwrap();
        assert_eq!(config.table, "t1");
        assert!(config.local_mode);
        assert!(Config::from_lookup(|_| Some("maybe".into()), false).is_err());
    }
}
