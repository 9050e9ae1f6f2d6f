//! Signed notices to a push service's callback (spec §4): today the admin's UNLINKED notice;
//! the durable NEW_MAIL dispatcher will send through the same trait.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use pushmail_core::protocol::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

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
/// best effort where it is sent inline.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    client: reqwest::Client,
}

impl HttpNotifier {
    pub fn new(timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pushmail/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn notify(&self, callback: &str, secret: &[u8], body: &[u8]) -> NoticeOutcome {
        let timestamp = Utc::now().timestamp();
        let result = self
            .client
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
