//! Signed notices to a push service's callback (spec §4): the admin's UNLINKED notice and the
//! dispatcher's NEW_MAIL notices.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use pushmail_core::network::CallbackPolicy;
use pushmail_core::protocol::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

use crate::resolver::{PermittedAddresses, Resolver, check_host};

/// How a notice attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeOutcome {
    /// The callback answered with this HTTP status.
    Answered(u16),
    /// No answer: connection refused, timeout, TLS failure.
    Unreachable(String),
}

impl NoticeOutcome {
    pub fn delivered(&self) -> bool {
        matches!(self, Self::Answered(status) if (200..300).contains(status))
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// POSTs `body` (JSON) to `callback`, signed with `secret` as spec §1 describes.
    async fn notify(&self, callback: &str, secret: &[u8], body: &[u8]) -> NoticeOutcome;
}

/// [`Notifier`] over HTTPS (or loopback HTTP in local mode), with a short timeout: a notice is
/// best effort where it is sent inline. It connects only to addresses the callback policy
/// permits, judged when it connects (spec §2): an IP literal as it is, a name by what it
/// resolves to then.
#[derive(Clone)]
pub struct HttpNotifier {
    /// None only if the HTTP client could not be built: then nothing is sent.
    client: Option<reqwest::Client>,
    resolver: Arc<dyn Resolver>,
    policy: CallbackPolicy,
}

impl HttpNotifier {
    /// `connect` bounds the connection; `total` the whole request, answer included.
    pub fn new(
        connect: Duration,
        total: Duration,
        resolver: Arc<dyn Resolver>,
        policy: CallbackPolicy,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(total)
            .connect_timeout(connect)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pushmail/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PermittedAddresses {
                resolver: resolver.clone(),
                policy,
            }))
            .build();
        if let Err(error) = &client {
            tracing::error!(%error, "the notice client could not be built: notices are not sent");
        }
        Self {
            client: client.ok(),
            resolver,
            policy,
        }
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, callback: &str, secret: &[u8], body: &[u8]) -> NoticeOutcome {
        let Some(client) = &self.client else {
            return NoticeOutcome::Unreachable("the notice client is unavailable".into());
        };
        // IP literals never reach the resolver: judge them here.
        let Ok(url) = url::Url::parse(callback) else {
            return NoticeOutcome::Unreachable("the callback is not a URL".into());
        };
        let host = url.host();
        let literal = match &host {
            Some(url::Host::Domain(_)) => None,
            Some(host) => Some(host),
            None => return NoticeOutcome::Unreachable("the callback has no host".into()),
        };
        if let Some(host) = literal
            && let Err(refused) = check_host(self.resolver.as_ref(), host, self.policy).await
        {
            return NoticeOutcome::Unreachable(refused.to_string());
        }
        let timestamp = Utc::now().timestamp();
        let result = client
            .post(callback)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(secret, timestamp, body))
            .body(body.to_vec())
            .send()
            .await;
        match result {
            Ok(response) => NoticeOutcome::Answered(response.status().as_u16()),
            Err(error) => NoticeOutcome::Unreachable(error.to_string()),
        }
    }
}
