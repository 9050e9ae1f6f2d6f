//! Integrated Accounts: listing, removal with the UNLINKED notice, and resending the
//! activation mail.

use pushmail_core::types::{Account, ActivationJob, ActivationState, Link, Page, now};
use pushmail_push::service::Delivery;
use pushmail_store::{AccountNotices, LinkQuery, NoticeCounts};
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use super::{AdminService, Principal};
use crate::error::{AdminError, AdminResult};
use crate::input::ListParams;

/// Whether the UNLINKED notice was sent. How the callback answered is logged, never answered:
/// a callback is someone else's URL, and its fate must not turn the API into a probe of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    Attempted,
    /// The domain has no push secret to sign it with.
    NotSentNoSecret,
}

/// Due relay jobs counted at most: the health answer says "this many or more", cheaply.
pub const RELAY_DUE_COUNTED: usize = 1000;

/// The server's health, as the admin API answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub imap_alive: bool,
    pub imap_heartbeat: Option<chrono::DateTime<chrono::Utc>>,
    pub relay_due: usize,
    pub notices: NoticeCounts,
}

impl AdminService {
    pub async fn list_integrated(
        &self,
        who: &Principal,
        raw_domain: Option<&str>,
        params: &ListParams,
    ) -> AdminResult<Page<(Link, AccountNotices)>> {
        params.no_prefix()?;
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
        // Each link's notices, read at once: a page is at most 100 links.
        let notices = futures_util::future::try_join_all(
            page.items
                .iter()
                .map(|link| self.store.account_notices(&link.address)),
        )
        .await?;
        Ok(Page {
            items: page.items.into_iter().zip(notices).collect(),
            cursor: page.cursor,
        })
    }

    /// The account's link with how its new-mail notices are going.
    pub async fn integrated(
        &self,
        who: &Principal,
        raw: &str,
    ) -> AdminResult<(Link, AccountNotices)> {
        let link = self.live_link(who, raw).await?;
        let notices = self.store.account_notices(&link.address).await?;
        Ok((link, notices))
    }

    /// Self-service: the account's own push link and its notices, if a device is linked.
    pub async fn own_integration(&self, account: &Account) -> AdminResult<(Link, AccountNotices)> {
        let link = self
            .store
            .link(&account.address)
            .await?
            .filter(Link::is_linked)
            .ok_or_else(|| AdminError::not_found("no device is linked to this account"))?;
        let notices = self.store.account_notices(&link.address).await?;
        Ok((link, notices))
    }

    /// What an admin checks first (server tokens only): the newest IMAP listener heartbeat (a
    /// SUBSCRIBE is refused without a recent one), the relay jobs due now (at most
    /// [`RELAY_DUE_COUNTED`]), and the notice counts.
    pub async fn health(&self, who: &Principal) -> AdminResult<Health> {
        who.require_server()?;
        let at = now();
        let imap_heartbeat = self.store.latest_heartbeat("imap").await?;
        Ok(Health {
            imap_alive: imap_heartbeat.is_some_and(|beat| {
                at - beat <= chrono::Duration::seconds(pushmail_push::service::IMAP_LIVENESS_SECS)
            }),
            imap_heartbeat,
            relay_due: self.store.due_relays(at, RELAY_DUE_COUNTED).await?.len(),
            notices: self.store.notice_counts().await?,
        })
    }

    /// Server-wide notice counts (server tokens only).
    pub async fn notice_counts(&self, who: &Principal) -> AdminResult<NoticeCounts> {
        who.require_server()?;
        Ok(self.store.notice_counts().await?)
    }

    /// Unlinks an integrated account and tells the push service once, best effort.
    pub async fn remove_integrated(&self, who: &Principal, raw: &str) -> AdminResult<NoticeStatus> {
        let address = self.account_address(who, raw)?;
        let Some(link) = self.store.remove_link(&address, now()).await? else {
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
        self.send_unlinked(&link, "removed_by_admin").await
    }

    pub(super) async fn send_unlinked(
        &self,
        link: &Link,
        reason: &str,
    ) -> AdminResult<NoticeStatus> {
        let Some(secret) = self
            .store
            .push_secrets(&link.address.domain())
            .await?
            .into_iter()
            .next()
        else {
            warn!(address = %link.address, "no push secret to sign the UNLINKED notice");
            return Ok(NoticeStatus::NotSentNoSecret);
        };
        let body = json!({
            "type": "UNLINKED",
            "id": format!("unl_{}", link.subscription_id),
            "subscription": link.subscription_id,
            "registration": link.registration,
            "email": link.address.as_str(),
            "reason": reason,
            "unlinked": now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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
            info!(address = %link.address, "UNLINKED notice delivered");
        } else {
            warn!(address = %link.address, ?outcome, "UNLINKED notice not delivered");
        }
        Ok(NoticeStatus::Attempted)
    }

    /// Queues the activation mail again and tries it at once; says whether it went out.
    pub async fn resend_activation(
        &self,
        who: &Principal,
        raw: &str,
    ) -> AdminResult<ActivationState> {
        let link = self.live_link(who, raw).await?;
        let now = now();
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
        Ok(
            match self
                .push
                .deliver_activation(&link.subscription_id, now)
                .await?
            {
                Delivery::Sent => ActivationState::Sent,
                _ => ActivationState::Pending,
            },
        )
    }
}
