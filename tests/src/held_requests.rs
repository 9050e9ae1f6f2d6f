//! A DynamoDB endpoint in front of the test's own (moto) that forwards every request, except:
//! - one chosen request, which it holds until the test lets it go. A read followed by a
//!   conditional write can then be raced deterministically: the test holds the write, makes the
//!   other write while it waits, and releases it. This is the interleaving where a write made
//!   without its condition goes wrong.
//! - chosen queries, which it answers with nothing, as an index a moment behind its writes
//!   answers (moto's indexes are never behind, DynamoDB's global ones can be).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmail_store::{DynamoStore, DynamoStoreConfig, S3Bodies};
use tokio::sync::oneshot;

use crate::stores::endpoint;
use crate::{TestStore, s3_client, sdk_config, serve};

/// What to hold: the next request of one of `operations` (the `X-Amz-Target` operation, e.g.
/// `DeleteItem`) whose body holds `marker`.
struct Hold {
    operations: Vec<String>,
    marker: String,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The endpoint; a store's requests go through it from [`HeldDynamo::store`].
pub struct HeldDynamo {
    url: String,
    armed: Arc<Mutex<Option<Hold>>>,
    /// Markers of the queries answered with nothing.
    behind: Arc<Mutex<Vec<String>>>,
}

/// One armed hold: [`Held::reached`] once the request waits; [`Held::release`] lets it go on.
pub struct Held {
    reached: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Waits until the request is held (at most 10 s).
    pub async fn reached(&mut self) {
        tokio::time::timeout(Duration::from_secs(10), &mut self.reached)
            .await
            .expect("the held request within 10 s")
            .expect("the endpoint still running");
    }

    pub fn release(self) {
        let _ = self.release.send(());
    }
}

impl HeldDynamo {
    pub async fn start() -> Self {
        let armed: Arc<Mutex<Option<Hold>>> = Arc::default();
        let behind: Arc<Mutex<Vec<String>>> = Arc::default();
        let upstream = endpoint();
        let forwarder = reqwest::Client::new();
        let (holds, lagging) = (armed.clone(), behind.clone());
        let router = axum::Router::new().fallback(
            move |method: http::Method,
                  uri: http::Uri,
                  headers: http::HeaderMap,
                  body: bytes::Bytes| {
                let (holds, lagging, forwarder, upstream) = (
                    holds.clone(),
                    lagging.clone(),
                    forwarder.clone(),
                    upstream.clone(),
                );
                async move {
                    let operation = headers
                        .get("x-amz-target")
                        .and_then(|target| target.to_str().ok())
                        .and_then(|target| target.rsplit('.').next())
                        .unwrap_or_default()
                        .to_owned();
                    let text = String::from_utf8_lossy(&body);
                    let lags = operation == "Query"
                        && lagging
                            .lock()
                            .expect("markers")
                            .iter()
                            .any(|marker| text.contains(marker.as_str()));
                    if lags {
                        return nothing_yet();
                    }
                    let hold = {
                        let mut armed = holds.lock().expect("holds");
                        let matches = armed.as_ref().is_some_and(|hold| {
                            hold.operations.contains(&operation) && text.contains(&hold.marker)
                        });
                        if matches { armed.take() } else { None }
                    };
                    if let Some(hold) = hold {
                        let _ = hold.reached.send(());
                        let _ = hold.release.await;
                    }
                    forward(&forwarder, &upstream, method, uri, headers, body).await
                }
            },
        );
        Self {
            url: serve(router).await,
            armed,
            behind,
        }
    }

    /// Answers every query whose body holds `marker` (an index partition, say) with nothing,
    /// as an index that has not caught up with the writes yet.
    pub fn lag_queries(&self, marker: &str) {
        self.behind.lock().expect("markers").push(marker.to_owned());
    }

    /// Holds the next request of one of `operations` whose body holds `marker`.
    pub fn hold_next(&self, operations: &[&str], marker: &str) -> Held {
        let (reached, reached_heard) = oneshot::channel();
        let (release, released) = oneshot::channel();
        *self.armed.lock().expect("holds") = Some(Hold {
            operations: operations.iter().map(|op| (*op).to_owned()).collect(),
            marker: marker.to_owned(),
            reached,
            release: released,
        });
        Held {
            reached: reached_heard,
            release,
        }
    }

    /// `test_store`'s table through this endpoint, and its bucket directly.
    pub async fn store(&self, test_store: &TestStore) -> DynamoStore {
        let table = test_store.table.clone().expect("a DynamoDB test store");
        let bucket = test_store.bucket.clone().expect("its bucket");
        DynamoStore::new(self.client().await, DynamoStoreConfig { table }).with_bodies(Arc::new(
            S3Bodies {
                client: s3_client().await,
                bucket,
            },
        ))
    }

    /// A DynamoDB client whose requests go through this endpoint.
    async fn client(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
            .endpoint_url(&self.url)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

/// A query's answer with no items.
fn nothing_yet() -> http::Response<axum::body::Body> {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .body(axum::body::Body::from(
            r#"{"Count":0,"Items":[],"ScannedCount":0}"#,
        ))
        .expect("a response")
}

/// The request as it came, to `upstream`; its answer as it came back.
async fn forward(
    forwarder: &reqwest::Client,
    upstream: &str,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> http::Response<axum::body::Body> {
    let path = uri.path_and_query().map_or("/", |path| path.as_str());
    let mut request =
        forwarder.request(method, format!("{}{path}", upstream.trim_end_matches('/')));
    for (name, value) in &headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let answer = request
        .body(body)
        .send()
        .await
        .expect("the endpoint behind");
    let mut response = http::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.expect("the answer's body");
    response
        .body(axum::body::Body::from(body))
        .expect("a response")
}
