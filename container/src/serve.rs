//! Serving: both routers on their addresses, the activation sweep, and the demo's seed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pushmail_core::types::{Address, TokenScope, now};
use pushmail_http::Limits;
use pushmail_push::dispatcher::DispatchSettings;
use pushmail_push::service::sweep_activations_every;
use pushmail_runtime::seed::{Seed, seed};
use pushmail_runtime::{Settings, logging, open};

use crate::hints::Hints;
use crate::mail::MailOptions;
use pushmail_store::Store;
use tracing::{error, info, warn};

/// How often activation mails that the mailer refused earlier are retried.
const ACTIVATION_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// The IMAP listener's heartbeat (spec §2: SUBSCRIBE needs a live IMAP listener).
const IMAP_HEARTBEAT_EVERY: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct ServeOptions {
    /// What this process runs: `all` (the default, locally), or `listeners` on AWS, where the
    /// Lambdas serve the Subscribe URL and the admin API and sweep activations: then only the
    /// SMTP and IMAP listeners, the notice dispatcher, the relay worker and the change hints.
    #[arg(long, env = "PUSHMAIL_ROLE", value_enum, default_value_t = Role::All)]
    role: Role,
    /// Where Prometheus scrapes the process's metrics (`/metrics`, text format): sessions,
    /// deliveries, password checks, notices. Off when unset; bind it where only the monitoring
    /// reaches.
    #[arg(long, env = "PUSHMAIL_METRICS_ADDR", conflicts_with = "metrics_emf")]
    metrics_addr: Option<SocketAddr>,
    /// On AWS: the metrics as CloudWatch Embedded Metric Format lines on standard output every
    /// minute (and at exit), under this CloudWatch namespace; no agent needed, CloudWatch Logs
    /// turns them into metrics.
    #[arg(long, env = "PUSHMAIL_METRICS_EMF")]
    metrics_emf: Option<String>,
    /// Where the Subscribe URL listens.
    #[arg(
        long,
        env = "PUSHMAIL_SUBSCRIBE_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    subscribe_addr: SocketAddr,
    /// Where the admin API listens.
    #[arg(long, env = "PUSHMAIL_ADMIN_ADDR", default_value = "127.0.0.1:8081")]
    admin_addr: SocketAddr,
    /// Seed a demo domain and account (example.com, alice@example.com / alice-password).
    #[arg(long, env = "PUSHMAIL_DEMO")]
    demo: bool,
    /// Seconds a client has to send a request's header, counted from when the connection waits
    /// for it (so also how long a kept-alive connection may idle).
    #[arg(long, env = "PUSHMAIL_HTTP_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    http_header_timeout: u64,
    /// Seconds a request may take, from its header to the answer (body included).
    #[arg(long, env = "PUSHMAIL_HTTP_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    http_request_timeout: u64,
    /// Open connections per HTTP listener; more wait until one closes.
    #[arg(long, env = "PUSHMAIL_HTTP_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    http_max_connections: u32,
    /// Open connections per source address and HTTP listener; more are closed at once.
    #[arg(long, env = "PUSHMAIL_HTTP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    http_max_connections_per_source: u32,
    #[command(flatten)]
    mail: MailOptions,
}

/// What one `pushmail` process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The HTTP APIs, the mail listeners and every worker.
    All,
    /// The mail listeners and their workers, not the HTTP APIs nor the activation sweep.
    Listeners,
}

impl ServeOptions {
    fn limits(&self) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(self.http_header_timeout),
            request_timeout: Duration::from_secs(self.http_request_timeout),
            max_connections: self.http_max_connections as usize,
            max_connections_per_source: self.http_max_connections_per_source as usize,
        }
    }
}

pub async fn run(settings: Settings, options: ServeOptions) -> anyhow::Result<()> {
    logging::init_tracing(settings.log_format());
    // Before anything is bound or printed: a SIGTERM from then on stops every listener.
    let shutdown = pushmail_http::Shutdown::on_signal().context("cannot handle SIGTERM")?;
    if let Some(address) = options.metrics_addr {
        export_metrics(address)?;
    }
    let emf = match &options.metrics_emf {
        Some(namespace) => Some(
            metrics_cloudwatch_embedded::Builder::new()
                .cloudwatch_namespace(namespace.clone())
                .with_auto_flush_interval(EMF_EVERY)
                .init()
                .map_err(|e| anyhow::anyhow!("cannot emit metrics as EMF: {e}"))?,
        ),
        None => None,
    };
    if emf.is_some() {
        describe_metrics();
    }
    // The process signs with the keys its domains name, so it can publish their records too.
    let services = open(&settings)
        .await?
        .with_dkim_records(Arc::new(|reference: &str| {
            pushmail_smtp::dkim::public_record(reference).map_err(|e| e.to_string())
        }));
    let dispatcher = services.dispatcher(DispatchSettings::default());
    let http = options.role == Role::All;
    // The first-run token only where this process serves the admin API: a task's output is
    // logged, and a token must never be.
    if http && services.store.list_tokens().await?.is_empty() {
        let (_, token) = services
            .admin()
            .issue_token(TokenScope::Server, "first-run")
            .await?;
        println!(
            "First run: a server-wide admin token, shown only now:\n\n    export PUSHMAIL_TOKEN={token}\n"
        );
    }
    let (subscribe_listener, admin_listener) = match http {
        true => (
            Some(bind(options.subscribe_addr).await?),
            Some(bind(options.admin_addr).await?),
        ),
        false => (None, None),
    };
    let smtp_listener = bind(options.mail.smtp_addr).await?;
    let submission_listener = bind(options.mail.submission_addr).await?;
    let imap_listener = bind(options.mail.imap_addr).await?;
    let imap_address = imap_listener.local_addr()?;
    let smtp_address = smtp_listener.local_addr()?;
    let submission_address = submission_listener.local_addr()?;
    let hints = Hints::start(
        options.mail.hint_topic_arn.as_deref(),
        Duration::from_secs(options.mail.hint_wait_secs),
    )
    .await?;
    let mail = options
        .mail
        .build(
            &settings,
            services.store.clone(),
            options.demo,
            dispatcher.waker(),
            hints.hints.clone(),
        )
        .await?;
    let imaps_listener = match &mail.imaps {
        Some(_) => Some(bind(options.mail.imaps_addr).await?),
        None => None,
    };
    let imaps_address = match &imaps_listener {
        Some(listener) => listener.local_addr()?.to_string(),
        None => "off (no certificate)".to_owned(),
    };
    let subscribe_address = match &subscribe_listener {
        Some(listener) => listener.local_addr()?,
        None => options.subscribe_addr,
    };
    let subscribe_url = format!(
        "http://{subscribe_address}{}",
        pushmail_push::SUBSCRIBE_PATH
    );
    let admin_address = match &admin_listener {
        Some(listener) => format!("http://{}/admin", listener.local_addr()?),
        None => "not here (--role listeners)".to_owned(),
    };
    let mut background = Vec::new();
    if options.demo {
        let demo = Seed {
            account: Address::parse("alice@example.com")?,
            password: "alice-password".into(),
            secret: "local-dev-secret".into(),
            subscribe_url: subscribe_url.clone(),
            smtp_server: "127.0.0.1".into(),
        };
        seed(&services.store, &demo).await?;
        let dkim_record = demo_dkim(&services.store, &settings.data_dir, &demo.account).await?;
        println!(
            "Demo: domain example.com (push secret 'local-dev-secret'), account alice@example.com / alice-password\n\
             Demo DKIM: demo._domainkey.example.com TXT \"{dkim_record}\""
        );
    }
    if http {
        background.push(tokio::spawn(sweep_activations_every(
            services.push(),
            ACTIVATION_SWEEP_EVERY,
        )));
    }
    let subscribe_shown = match http {
        true => subscribe_url.clone(),
        false => "not here (--role listeners)".to_owned(),
    };
    println!(
        "Subscribe URL: {subscribe_shown}\nAdmin API:     {admin_address}\nSMTP:          {smtp_address}\nSubmission:    {submission_address}\nIMAP:          {imap_address}\nIMAPS:         {imaps_address}\nStore:         {}\n",
        settings.describe_store()
    );
    info!(?settings, ?options, "pushmail running");
    let limits = options.limits();
    let subscribe = optional(subscribe_listener.map(|listener| {
        pushmail_http::serve_until(
            listener,
            pushmail_push::router(services.push()),
            limits,
            shutdown.clone().requested(),
        )
    }));
    let admin = optional(admin_listener.map(|listener| {
        pushmail_http::serve_until(
            listener,
            pushmail_admin_api::router(services.admin()),
            limits,
            shutdown.clone().requested(),
        )
    }));
    let smtp_limits = options.mail.smtp_limits();
    let smtp = pushmail_listener::serve(
        smtp_listener,
        mail.inbound,
        smtp_limits.clone(),
        shutdown.clone().requested(),
    );
    let submission = pushmail_listener::serve(
        submission_listener,
        mail.submission,
        smtp_limits,
        shutdown.clone().requested(),
    );
    background.push(tokio::spawn(dispatcher.run(std::future::pending())));
    if let Some(outgoing) = mail.outgoing {
        background.push(tokio::spawn(outgoing.run(std::future::pending())));
    }
    let closing = (mail.imap.clone(), mail.imaps.clone());
    let imap_limits = options.mail.imap_limits();
    let imap_shutdown = shutdown.clone();
    let imap =
        pushmail_listener::serve(imap_listener, mail.imap, imap_limits.clone(), async move {
            imap_shutdown.requested().await;
            // Idlers are told BYE now rather than cut off when the grace period ends.
            closing.0.close();
            if let Some(imaps) = &closing.1 {
                imaps.close();
            }
        });
    let imaps = async move {
        match (mail.imaps, imaps_listener) {
            (Some(imaps), Some(imaps_listener)) => {
                pushmail_listener::serve(imaps_listener, imaps, imap_limits, shutdown.requested())
                    .await
            }
            _ => Ok(()),
        }
    };
    // The first heartbeat before any listener serves: a SUBSCRIBE that reaches this process
    // never finds IMAP missing while it runs.
    let instance = format!("imap-{}-{}", std::process::id(), now().timestamp_millis());
    services
        .store
        .record_heartbeat("imap", &instance, now())
        .await?;
    background.push(tokio::spawn(imap_heartbeat(
        services.store.clone(),
        instance,
    )));
    let served = tokio::try_join!(subscribe, admin, smtp, submission, imap, imaps);
    for task in background {
        task.abort();
    }
    hints.stop().await;
    // What was counted since the last minute's lines.
    if let Some(emf) = emf
        && let Err(error) = emf.flush(std::io::stdout())
    {
        warn!(%error, "the last metrics were not written");
    }
    served?;
    Ok(())
}

/// How often EMF lines are written.
const EMF_EVERY: Duration = Duration::from_secs(60);

/// Serves the metrics on `address` for Prometheus, each described.
fn export_metrics(address: SocketAddr) -> anyhow::Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(address)
        .install()
        .with_context(|| format!("cannot serve metrics on {address}"))?;
    describe_metrics();
    Ok(())
}

fn describe_metrics() {
    use pushmail_core::metric_names::{DESCRIBED, MetricKind};
    for &(name, kind, help) in DESCRIBED {
        match kind {
            MetricKind::Counter => metrics::describe_counter!(name, help),
            MetricKind::Gauge => metrics::describe_gauge!(name, help),
            MetricKind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// A listener this role runs, or nothing to wait for.
async fn optional<E>(serving: Option<impl Future<Output = Result<(), E>>>) -> Result<(), E> {
    match serving {
        Some(serving) => serving.await,
        None => Ok(()),
    }
}

async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Demo only: a DKIM key for the demo account's domain (made at the first start and kept in
/// the data folder, readable by its owner only, so the printed DNS record stays true), so that
/// submitted mail leaves signed. Returns its TXT record.
async fn demo_dkim(
    store: &Arc<dyn Store>,
    data_dir: &std::path::Path,
    account: &Address,
) -> anyhow::Result<String> {
    std::fs::create_dir_all(data_dir)?;
    let path = std::fs::canonicalize(data_dir)?.join("demo-dkim.pem");
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|pem| pushmail_smtp::dkim::ed25519_record_of_pem(&pem).ok());
    let record = match kept {
        Some(record) => record,
        None => {
            let (pem, record) = pushmail_smtp::dkim::generate_ed25519()?;
            let _ = std::fs::remove_file(&path);
            write_private(&path, &pem)?;
            record
        }
    };
    let name = account.domain();
    let mut domain = store
        .domain(&name)
        .await?
        .with_context(|| format!("demo domain {name} missing"))?;
    domain.dkim_selector = Some("demo".into());
    domain.dkim_key_ref = Some(format!("file:{}", path.display()));
    store.put_domain(&domain).await?;
    Ok(record)
}

/// Writes a new file readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// While the IMAP listener runs, it says so every 20 s (SUBSCRIBE answers 503 without it).
async fn imap_heartbeat(store: Arc<dyn Store>, instance: String) {
    let mut ticks = tokio::time::interval(IMAP_HEARTBEAT_EVERY);
    loop {
        ticks.tick().await;
        if let Err(error) = store.record_heartbeat("imap", &instance, now()).await {
            error!(%error, "IMAP heartbeat failed");
        }
    }
}
