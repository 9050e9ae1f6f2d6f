//! Admin tokens and the audit trail.

use pushmail_core::types::{AdminToken, AuditEntry, DomainName, Page, TokenScope};
use pushmail_store::TokenDelete;

use super::{AdminService, Principal};
use crate::error::{AdminError, AdminResult};
use crate::input::{ListParams, NewToken, check_text, parse_domain};

impl AdminService {
    /// A new token and its plaintext, shown only in this answer.
    pub async fn create_token(
        &self,
        who: &Principal,
        input: NewToken,
    ) -> AdminResult<(AdminToken, String)> {
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
        Ok((token, plaintext))
    }

    pub async fn list_tokens(&self, who: &Principal) -> AdminResult<Vec<AdminToken>> {
        who.require_server()?;
        Ok(self.store.list_tokens().await?)
    }

    pub async fn delete_token(&self, who: &Principal, id: &str) -> AdminResult<()> {
        who.require_server()?;
        match self.store.delete_token(id).await? {
            TokenDelete::Deleted => {}
            TokenDelete::NotFound => {
                return Err(AdminError::not_found(format!("no token {id}")));
            }
            TokenDelete::LastServerToken => {
                return Err(AdminError::conflict(
                    "this is the last server-wide token; create another before deleting it",
                ));
            }
        }
        self.audit(&who.token_id, "token.delete", id, None).await
    }

    pub async fn domain_audit(
        &self,
        who: &Principal,
        raw: &str,
        params: &ListParams,
    ) -> AdminResult<Page<AuditEntry>> {
        let name = parse_domain(raw)?;
        who.require_domain(&name)?;
        self.audit_page(Some(&name), params).await
    }

    pub async fn server_audit(
        &self,
        who: &Principal,
        params: &ListParams,
    ) -> AdminResult<Page<AuditEntry>> {
        who.require_server()?;
        self.audit_page(None, params).await
    }

    async fn audit_page(
        &self,
        domain: Option<&DomainName>,
        params: &ListParams,
    ) -> AdminResult<Page<AuditEntry>> {
        params.no_prefix()?;
        if params.activation.is_some() {
            return Err(AdminError::invalid(
                "parameter `activation` applies to integrated accounts only",
            ));
        }
        Ok(self
            .store
            .list_audit(domain, params.cursor.as_deref(), params.limit()?)
            .await?)
    }
}
