//! A push service's callback endpoint for the tests.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::serve;

/// A push service's callback endpoint on loopback that records what it receives, answering
/// with a status that can change (0: never answers, as a hung server).
pub struct CallbackSink {
    pub url: String,
    received: Arc<std::sync::Mutex<Vec<ReceivedNotice>>>,
    status: Arc<std::sync::atomic::AtomicU16>,
}

#[derive(Debug, Clone)]
pub struct ReceivedNotice {
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    /// What the sink answered.
    pub status: u16,
}

impl ReceivedNotice {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON notice")
    }

    /// Whether the signature is `secret`'s over this timestamp and body (spec §1).
    pub fn signed_with(&self, secret: &str) -> bool {
        let timestamp: i64 = self.timestamp.parse().unwrap_or_default();
        pushmail_core::protocol::sign(secret.as_bytes(), timestamp, &self.body) == self.signature
    }
}

impl CallbackSink {
    /// Answers every POST with `status`.
    pub async fn start(status: u16) -> Self {
        let received: Arc<std::sync::Mutex<Vec<ReceivedNotice>>> = Arc::default();
        let status = Arc::new(std::sync::atomic::AtomicU16::new(status));
        let (store, answer) = (received.clone(), status.clone());
        let handler = move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let (store, answer) = (store.clone(), answer.clone());
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let status = answer.load(Ordering::SeqCst);
                store.lock().expect("sink lock").push(ReceivedNotice {
                    timestamp: header("x-push-timestamp"),
                    signature: header("x-push-signature"),
                    body: body.to_vec(),
                    status,
                });
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                axum::http::StatusCode::from_u16(status).expect("status")
            }
        };
        let base = serve(axum::Router::new().route("/n/{id}", axum::routing::post(handler))).await;
        Self {
            url: format!("{base}/n/"),
            received,
            status,
        }
    }

    /// How the sink answers from now on.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ReceivedNotice> {
        self.received.lock().expect("sink lock").clone()
    }

    /// The notices answered 2xx, in the order they came.
    pub fn accepted(&self) -> Vec<ReceivedNotice> {
        self.received()
            .into_iter()
            .filter(|notice| (200..300).contains(&notice.status))
            .collect()
    }

    /// The subjects of the notices answered 2xx, in the order they came.
    pub fn accepted_subjects(&self) -> Vec<String> {
        self.accepted()
            .iter()
            .map(|notice| {
                notice.json()["subject"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Waits (up to 10 s) until `done` holds for what was received.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[ReceivedNotice]) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done(&self.received()) {
            assert!(
                std::time::Instant::now() < deadline,
                "waited in vain for {what}; received {:?}",
                self.received()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
