//! Test harness: a fresh store (the embedded one in a temporary folder, or a fresh DynamoDB
//! table when an AWS endpoint is set: moto locally, LocalStack or AWS elsewhere), a per-test
//! mail domain, kept activation mail, and both routers served on real TCP ports.
//!
//! `PUSHMAIL_TEST_STORE=embedded|dynamodb` chooses the backend; by default DynamoDB when
//! `AWS_ENDPOINT_URL` is set, else embedded, so `cargo test` needs nothing running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pushmail_admin_api::service::AdminService;
use pushmail_core::password::hash_password;
use pushmail_core::protocol::{MAX_LIVE_SECRETS, sign};
use pushmail_core::types::{
    Account, Address, Domain, DomainName, PushSecret, ServerSettings, StoredMail, TokenScope,
};
use pushmail_push::mailer::{ActivationMail, MailError, Mailer, StoreMailer};
use pushmail_push::resolver::Resolver;
use pushmail_push::service::PushService;
use pushmail_store::Store;
use serde_json::{Value, json};

pub mod admin;
mod answers;
mod callback;
pub mod fixtures;
mod held_requests;
pub mod imap;
pub mod openapi;
pub mod smtp;
mod stores;
pub mod subscribe;

pub use answers::{Answer, assert_error, assert_status};
use answers::{into_admin_answer, into_answer};
pub use callback::{CallbackSink, ReceivedNotice};
pub use held_requests::{Held, HeldDynamo};
use stores::unique;
pub use stores::{
    TestStore, create_bucket, create_table, dynamo_store, dynamo_store_with, embedded_store,
    embedded_store_with, on_dynamodb, s3_client, sdk_config, test_store, test_store_with,
};

pub const PASSWORD: &str = "correct horse battery staple";

/// Kept mail (as the local process keeps it) that can be told to refuse, as SES refuses an
/// unverified sender: the mailer failing is part of the activation rules under test.
pub struct TestMailer {
    kept: StoreMailer,
    accepting: AtomicBool,
}

#[async_trait]
impl Mailer for TestMailer {
    async fn send_activation(&self, mail: &ActivationMail) -> Result<(), MailError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(MailError::NotSent("the test mailer is refusing".into()));
        }
        self.kept.send_activation(mail).await
    }
}

/// Callback names resolved from a table the test sets: the suites make no DNS queries, and a
/// test can make a name point anywhere (to a private address, say) at any moment.
#[derive(Default)]
pub struct StaticResolver {
    names: std::sync::Mutex<std::collections::HashMap<String, Vec<std::net::IpAddr>>>,
}

impl StaticResolver {
    pub fn set(&self, name: &str, addresses: &[&str]) {
        let addresses = addresses
            .iter()
            .map(|a| a.parse().expect("an IP"))
            .collect();
        self.names
            .lock()
            .expect("resolver lock")
            .insert(name.to_owned(), addresses);
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<std::net::IpAddr>> {
        self.names
            .lock()
            .expect("resolver lock")
            .get(host)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
    }
}

/// One test's world: its own store, domain and secret.
pub struct Harness {
    pub base_url: String,
    pub admin_url: String,
    pub admin: Arc<AdminService>,
    /// A server-wide admin token.
    pub server_token: String,
    pub store: Arc<dyn Store>,
    pub service: Arc<PushService>,
    pub domain: DomainName,
    pub secret: String,
    /// How callback hosts resolve in this test (nothing resolves until set).
    pub resolver: Arc<StaticResolver>,
    mailer: Arc<TestMailer>,
    http: reqwest::Client,
    last_timestamp: AtomicI64,
    imap_keepalive: Arc<AtomicBool>,
    _store: TestStore,
}

pub struct Setup {
    /// Whether the mailer accepts the activation mail from the start.
    pub mail_accepted: bool,
    /// How much of each account's change log the store keeps.
    pub change_window: pushmail_store::ChangeWindow,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            mail_accepted: true,
            change_window: pushmail_store::ChangeWindow::DEFAULT,
        }
    }
}

/// Logs show with a failing test's output (RUST_LOG to filter).
pub fn init_test_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("pushmail=info")),
        )
        .with_test_writer()
        .try_init();
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Setup::default()).await
    }

    /// The store this harness runs on (its DynamoDB table, or its embedded file).
    pub fn test_store(&self) -> &TestStore {
        &self._store
    }

    pub async fn start_with(setup: Setup) -> Self {
        init_test_logs();
        let test_store = test_store_with(setup.change_window).await;
        let store = test_store.store.clone();
        let mailer = Arc::new(TestMailer {
            kept: StoreMailer::new(store.clone(), "pushmail <push@pushmail.test>"),
            accepting: AtomicBool::new(setup.mail_accepted),
        });
        let resolver = Arc::new(StaticResolver::default());
        let services =
            pushmail_runtime::Services::new(store.clone(), mailer.clone(), resolver.clone(), true);
        let (_, server_token) = services
            .admin()
            .issue_token(TokenScope::Server, "test")
            .await
            .expect("bootstrap token");
        let harness = Self {
            base_url: serve(pushmail_push::router(services.push())).await,
            admin_url: serve(pushmail_admin_api::router(services.admin())).await,
            admin: services.admin(),
            server_token,
            store,
            service: services.push(),
            domain: DomainName::parse(&format!("{}.example", unique("d"))).expect("valid domain"),
            secret: unique("secret-"),
            resolver,
            mailer,
            http: reqwest::Client::new(),
            last_timestamp: AtomicI64::new(0),
            imap_keepalive: Arc::new(AtomicBool::new(true)),
            _store: test_store,
        };
        harness.enable_push().await;
        harness.heartbeat(Utc::now()).await;
        // Like a running IMAP listener: a test that takes longer than a minute stays "alive".
        let store = harness.store.clone();
        let keepalive = harness.imap_keepalive.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(20)).await;
                if keepalive.load(Ordering::SeqCst) {
                    let _ = store
                        .record_heartbeat("imap", "test-listener", Utc::now())
                        .await;
                }
            }
        });
        harness
    }

    /// An SMTP listener (the inbound role) on a free loopback port, on this harness's store.
    pub async fn smtp(&self, settings: pushmail_smtp::SmtpSettings) -> std::net::SocketAddr {
        self.listen_smtp(pushmail_smtp::Smtp::inbound(self.store.clone(), settings))
            .await
    }

    /// A listener for `smtp` (either role) on a free loopback port.
    pub async fn listen_smtp(&self, smtp: pushmail_smtp::Smtp) -> std::net::SocketAddr {
        self.listen_smtp_with(smtp, pushmail_listener::Limits::default())
            .await
    }

    /// The same, within `limits`.
    pub async fn listen_smtp_with(
        &self,
        smtp: pushmail_smtp::Smtp,
        limits: pushmail_listener::Limits,
    ) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        tokio::spawn(pushmail_listener::serve(
            listener,
            Arc::new(smtp),
            limits,
            std::future::pending(),
        ));
        address
    }

    /// Server switch on, domain with push on and one secret.
    async fn enable_push(&self) {
        let now = Utc::now();
        self.store
            .put_server_settings(&ServerSettings { push_enabled: true })
            .await
            .expect("server settings");
        let mut domain = Domain::new(self.domain.clone(), now);
        domain.push_enabled = true;
        self.store.put_domain(&domain).await.expect("domain");
        self.add_secret(&self.secret, now).await;
    }

    pub async fn add_secret(&self, value: &str, created_at: DateTime<Utc>) {
        let secret = PushSecret {
            id: unique("ps_"),
            value: value.to_owned(),
            created_at,
        };
        self.store
            .add_push_secret(&self.domain, &secret, MAX_LIVE_SECRETS)
            .await
            .expect("secret");
    }

    pub async fn set_domain_push(&self, enabled: bool) {
        let mut domain = self
            .store
            .domain(&self.domain)
            .await
            .unwrap()
            .expect("domain exists");
        domain.push_enabled = enabled;
        self.store.put_domain(&domain).await.unwrap();
    }

    /// From now on the mailer accepts activation mail.
    pub fn accept_mail(&self) {
        self.mailer.accepting.store(true, Ordering::SeqCst);
    }

    /// Stops (or restarts) the harness's stand-in IMAP listener from refreshing its heartbeat.
    pub fn imap_keepalive(&self, on: bool) {
        self.imap_keepalive.store(on, Ordering::SeqCst);
    }

    pub async fn heartbeat(&self, at: DateTime<Utc>) {
        self.store
            .record_heartbeat("imap", "test-listener", at)
            .await
            .expect("heartbeat");
    }

    /// A new account of the test's domain with [`PASSWORD`].
    pub async fn account(&self, local: &str) -> Address {
        let address = Address::parse(&format!("{local}@{}", self.domain)).expect("valid address");
        self.store
            .put_account(&Account {
                address: address.clone(),
                password_hash: hash_password(PASSWORD).expect("hash"),
                enabled: true,
                display_name: None,
                pushed_folders: Vec::new(),
                created_at: Utc::now(),
                revision: 0,
                quota_bytes: None,
                sender_aliases: Vec::new(),
                filing_rules: Vec::new(),
            })
            .await
            .expect("account");
        self.store
            .create_default_folders(&address, Utc::now())
            .await
            .expect("folders");
        address
    }

    /// Delivers a mail from Bob with `subject` straight into the account's `folder`, as any
    /// delivery path does (no dispatcher is woken: only the store's due order brings it).
    pub async fn deliver_mail(
        &self,
        account: &Address,
        folder: &str,
        subject: &str,
    ) -> pushmail_store::Delivery {
        let raw = format!(
            "From: Bob <bob@example.org>\r\nTo: {account}\r\nSubject: {subject}\r\n\r\nhi\r\n"
        );
        self.store
            .deliver(
                account,
                &pushmail_core::folder::FolderName::parse(folder).expect("folder name"),
                &fixtures::new_message(raw),
                None,
            )
            .await
            .expect("delivered")
    }

    /// A new-mail notice dispatcher on this harness's store, sending through the same callback
    /// policy and resolver as the service (loopback callbacks allowed), retrying quickly.
    pub fn dispatcher(&self) -> Arc<pushmail_push::dispatcher::Dispatcher> {
        self.dispatcher_with(|_| {})
    }

    /// [`dispatcher`](Self::dispatcher) with its settings changed by `change`.
    pub fn dispatcher_with(
        &self,
        change: impl FnOnce(&mut pushmail_push::dispatcher::DispatchSettings),
    ) -> Arc<pushmail_push::dispatcher::Dispatcher> {
        use pushmail_push::dispatcher::{DispatchSettings, Dispatcher};
        let notifier = pushmail_push::notifier::HttpNotifier::new(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(3),
            self.resolver.clone(),
            self.service.callback_policy(),
        );
        let mut settings = DispatchSettings {
            retry: pushmail_core::notice::RetryPolicy {
                first_retry: std::time::Duration::from_millis(50),
                max_retry: std::time::Duration::from_millis(200),
                give_up_after: std::time::Duration::from_secs(3600),
            },
            poll_every: std::time::Duration::from_millis(20),
            ..DispatchSettings::default()
        };
        change(&mut settings);
        Dispatcher::new(self.store.clone(), Arc::new(notifier), settings)
    }

    /// A folder's messages (the first 100) with their bytes.
    pub async fn stored_messages(
        &self,
        account: &Address,
        folder: &str,
    ) -> Vec<(pushmail_core::mailbox::MessageMeta, Vec<u8>)> {
        let folder = pushmail_core::folder::FolderName::parse(folder).expect("folder name");
        let mut stored = Vec::new();
        for meta in self
            .store
            .messages(account, &folder, 0, 100)
            .await
            .expect("messages")
        {
            let raw = self
                .store
                .message_body(account, &folder, meta.uid)
                .await
                .expect("body")
                .expect("a listed message has a body");
            stored.push((meta, raw));
        }
        stored
    }

    /// A SUBSCRIBE body with the test's defaults.
    pub fn subscribe_body(&self, address: &Address, registration: &str, generation: u64) -> Value {
        json!({
            "type": "SUBSCRIBE", "email": address.as_str(), "password": PASSWORD,
            "registration": registration, "generation": generation,
            "callback": format!("https://push.example.net/n/{registration}"),
            "device": {"pin": "2A3B4C5D", "model": "Bold 9700"},
        })
    }

    /// Subscribes `account` with its callback at `sink`; the subscription's id.
    pub async fn integrate(
        &self,
        account: &Address,
        sink: &CallbackSink,
        registration: &str,
        generation: u64,
    ) -> String {
        let mut body = self.subscribe_body(account, registration, generation);
        body["callback"] = json!(format!("{}{registration}", sink.url));
        let answer = self.post(&body).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["subscription"].as_str().unwrap().to_owned()
    }

    pub fn unsubscribe_body(
        &self,
        address: &Address,
        registration: &str,
        generation: u64,
    ) -> Value {
        json!({"type": "UNSUBSCRIBE", "email": address.as_str(), "registration": registration, "generation": generation})
    }

    /// POSTs `body`, signed with the test's secret. Byte-identical requests signed in the same
    /// second carry the same signature, which is a replay (spec §1); so each call here signs
    /// with a timestamp one second after the last, starting 290 s back, inside the window.
    pub async fn post(&self, body: &Value) -> Answer {
        self.post_signed_with(body, &self.secret.clone()).await
    }

    /// As [`Harness::post`], coming back after `Retry-After` while the answer is 429 "busy"
    /// (checks in progress fill the account's limit), re-signed each time, at most 20 times.
    pub async fn post_retrying_busy(&self, body: &Value) -> Answer {
        for _ in 0..20 {
            let answer = self.post(body).await;
            let busy = answer.status == 429
                && answer.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("busy"));
            if !busy {
                return answer;
            }
            let wait: u64 = answer
                .retry_after
                .as_deref()
                .and_then(|v| v.parse().ok())
                .expect("a 429 carries Retry-After");
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        panic!("still busy after 20 tries");
    }

    /// POSTs `body` signed with the test's secret at `timestamp` (unix seconds).
    pub async fn post_signed_at(&self, body: &Value, timestamp: i64) -> Answer {
        let bytes = serde_json::to_vec(body).expect("json");
        self.post_bytes(bytes, "application/json", timestamp, &self.secret)
            .await
    }

    /// Posts these bytes as they are, signed with `secret` at `timestamp` (a body that is not
    /// JSON, a replay of the very same request, another content type).
    pub async fn post_bytes(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        timestamp: i64,
        secret: &str,
    ) -> Answer {
        let signature = sign(secret.as_bytes(), timestamp, &bytes);
        self.post_raw(
            bytes,
            content_type,
            Some(&timestamp.to_string()),
            Some(&signature),
        )
        .await
    }

    /// As [`Harness::post`], signed with another secret.
    pub async fn post_signed_with(&self, body: &Value, secret: &str) -> Answer {
        let bytes = serde_json::to_vec(body).expect("json");
        let now = Utc::now().timestamp();
        let timestamp = self
            .last_timestamp
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some((last + 1).max(now - 290))
            })
            .map(|last| (last + 1).max(now - 290))
            .expect("always Some");
        assert!(
            timestamp < now + 290,
            "too many requests in one test for the clock window"
        );
        let signature = sign(secret.as_bytes(), timestamp, &bytes);
        self.post_raw(
            bytes,
            "application/json",
            Some(&timestamp.to_string()),
            Some(&signature),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        content_type: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}/subscribe", self.base_url))
            .header("content-type", content_type)
            .body(body);
        if let Some(timestamp) = timestamp {
            request = request.header("x-push-timestamp", timestamp);
        }
        if let Some(signature) = signature {
            request = request.header("x-push-signature", signature);
        }
        let response = request.send().await.expect("request reaches the server");
        into_answer(response).await
    }

    /// An admin API request with a bearer token (or none).
    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let method_name = method;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.admin_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_admin_answer(method_name, path, request).await
    }

    /// An admin API request with the server-wide token.
    pub async fn admin_as_server(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.admin_call(method, path, Some(&self.server_token), body)
            .await
    }

    /// A self-service request to the pushed folders with HTTP Basic credentials.
    pub async fn self_call(
        &self,
        method: &str,
        address: &str,
        password: &str,
        body: Option<Value>,
    ) -> Answer {
        self.self_call_at("/self/pushed-folders", method, address, password, body)
            .await
    }

    /// A self-service request to `path` with HTTP Basic credentials.
    pub async fn self_call_at(
        &self,
        path: &str,
        method: &str,
        address: &str,
        password: &str,
        body: Option<Value>,
    ) -> Answer {
        let method_name = method;
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.admin_url))
            .basic_auth(address, Some(password));
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_admin_answer(method_name, path, request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("request reaches the server");
        into_answer(response).await
    }

    /// The activation mails kept for `to`, newest first.
    pub async fn activation_mails(&self, to: &Address) -> Vec<StoredMail> {
        self.store.mails(to, 100).await.expect("kept mail")
    }
}

/// Serves the Subscribe URL router on a free loopback port; returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(pushmail_http::serve_until(
        listener,
        router,
        pushmail_http::Limits::default(),
        std::future::pending(),
    ));
    format!("http://{address}")
}
