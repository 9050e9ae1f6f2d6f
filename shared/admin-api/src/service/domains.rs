//! Server settings, domains and their push secrets.

use pushmail_core::protocol::MAX_LIVE_SECRETS;
use pushmail_core::types::{Domain, PushSecret, ServerSettings, now};
use pushmail_store::{DomainDelete, SecretAdd};

use super::{AdminService, Principal, random_hex};
use crate::error::{AdminError, AdminResult};
use crate::input::{
    DomainSettingsInput, NewDomain, ServerSettingsInput, apply_domain_settings, parse_domain,
};

impl AdminService {
    pub async fn server_settings(&self, who: &Principal) -> AdminResult<ServerSettings> {
        who.require_server()?;
        Ok(self.store.server_settings().await?)
    }

    pub async fn set_server_settings(
        &self,
        who: &Principal,
        input: ServerSettingsInput,
    ) -> AdminResult<ServerSettings> {
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
        Ok(settings)
    }

    /// The domains the token may see.
    pub async fn list_domains(&self, who: &Principal) -> AdminResult<Vec<Domain>> {
        let mut domains = self.store.list_domains().await?;
        domains.retain(|d| who.scope.allows_domain(&d.name));
        Ok(domains)
    }

    pub async fn create_domain(&self, who: &Principal, input: NewDomain) -> AdminResult<Domain> {
        who.require_server()?;
        let name = parse_domain(&input.name)?;
        let mut domain = Domain::new(name.clone(), now());
        apply_domain_settings(&mut domain, input.settings)?;
        if !self.store.create_domain(&domain).await? {
            return Err(AdminError::conflict(format!("domain {name} exists")));
        }
        self.audit(&who.token_id, "domain.create", name.as_str(), Some(&name))
            .await?;
        Ok(domain)
    }

    pub async fn domain(&self, who: &Principal, raw: &str) -> AdminResult<Domain> {
        self.existing_domain(who, raw).await
    }

    pub async fn update_domain(
        &self,
        who: &Principal,
        raw: &str,
        input: DomainSettingsInput,
    ) -> AdminResult<Domain> {
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
        Ok(domain)
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

    /// A new push secret, its value shown only in this answer.
    pub async fn create_secret(&self, who: &Principal, raw: &str) -> AdminResult<PushSecret> {
        let domain = self.existing_domain(who, raw).await?;
        let secret = PushSecret {
            id: format!("ps_{}", random_hex(6)),
            value: random_hex(32),
            created_at: now(),
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
        Ok(secret)
    }

    pub async fn list_secrets(&self, who: &Principal, raw: &str) -> AdminResult<Vec<PushSecret>> {
        let domain = self.existing_domain(who, raw).await?;
        Ok(self.store.push_secrets(&domain.name).await?)
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
}

/// The DNS record that publishes a domain's DKIM key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DkimRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

impl AdminService {
    /// The TXT record to publish for the domain's DKIM key: its name from the selector, its
    /// value from the key the reference names (read off the async threads).
    pub async fn dkim_record(&self, who: &Principal, raw: &str) -> AdminResult<DkimRecord> {
        let domain = self.existing_domain(who, raw).await?;
        let (Some(selector), Some(reference)) = (domain.dkim_selector, domain.dkim_key_ref) else {
            return Err(AdminError::not_found(
                "the domain has no DKIM selector and key reference",
            ));
        };
        let Some(records) = self.dkim_records.clone() else {
            return Err(AdminError::not_found(
                "this server does not read DKIM keys (on AWS, SES Easy DKIM publishes the domain's records)",
            ));
        };
        let value = tokio::task::spawn_blocking(move || records(&reference))
            .await
            .map_err(|e| AdminError::internal(&e))?
            .map_err(|why| AdminError::conflict(format!("the DKIM key cannot be read: {why}")))?;
        Ok(DkimRecord {
            name: format!("{selector}._domainkey.{}", domain.name),
            kind: "TXT",
            value,
        })
    }
}
