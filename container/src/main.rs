//! pushmail on one machine: the Subscribe URL and the admin API served from the same routers as
//! the Lambdas, on an embedded store (default) or DynamoDB, with the activation sweep running
//! in-process. The IMAP/SMTP listeners and the notice dispatcher join this process later.
//!
//!   pushmail [--data-dir DIR] [--store embedded|dynamodb] [--mail store|ses]
//!            [--subscribe-addr HOST:PORT] [--admin-addr HOST:PORT] [--demo]
//!   pushmail bootstrap [same store flags]     print a new server-wide admin token and exit
//!
//! Every flag has an environment variable (README: Configuration).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pushmail_core::admin::AdminService;
use pushmail_core::aws::AwsContext;
use pushmail_core::config::Config;
use pushmail_core::mailer::{Mailer, StoreMailer};
use pushmail_core::notifier::HttpNotifier;
use pushmail_core::seed::Seed;
use pushmail_core::service::{PushService, ServiceSettings, sweep_activations_every};
use pushmail_core::store::{EmbeddedStore, Store};
use pushmail_core::types::{Address, TokenScope, now};
use tracing::{error, info, warn};

const ACTIVATION_SWEEP_EVERY: Duration = Duration::from_secs(30);
const IMAP_STANDIN_EVERY: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Embedded,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MailKind {
    Store,
    Ses,
}

#[derive(Debug)]
struct Options {
    data_dir: PathBuf,
    store: StoreKind,
    mail: MailKind,
    subscribe_addr: String,
    admin_addr: String,
    demo: bool,
    /// Print a new server-wide admin token and exit.
    bootstrap: bool,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut options = Self {
            data_dir: env("PUSHMAIL_DATA_DIR")
                .unwrap_or_else(|| "pushmail-data".into())
                .into(),
            store: parse_store(&env("PUSHMAIL_STORE").unwrap_or_else(|| "embedded".into()))?,
            mail: MailKind::Store,
            subscribe_addr: env("PUSHMAIL_SUBSCRIBE_ADDR")
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            admin_addr: env("PUSHMAIL_ADMIN_ADDR").unwrap_or_else(|| "127.0.0.1:8081".into()),
            demo: env("PUSHMAIL_DEMO").is_some_and(|v| v == "1"),
            bootstrap: false,
        };
        let mut mail = env("PUSHMAIL_MAIL");
        let mut args = std::env::args().skip(1).peekable();
        let bootstrap = args.next_if(|a| a == "bootstrap").is_some();
        while let Some(flag) = args.next() {
            if flag == "--demo" {
                options.demo = true;
                continue;
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--data-dir" => options.data_dir = value.into(),
                "--store" => options.store = parse_store(&value)?,
                "--mail" => mail = Some(value),
                "--subscribe-addr" => options.subscribe_addr = value,
                "--admin-addr" => options.admin_addr = value,
                _ => bail!("unknown flag {flag} (see the README's Configuration)"),
            }
        }
        // Mail goes where the store is, unless said otherwise: kept locally, or SES on AWS.
        options.bootstrap = bootstrap;
        options.mail = match mail.as_deref() {
            None if options.store == StoreKind::Dynamodb => MailKind::Ses,
            None | Some("store") => MailKind::Store,
            Some("ses") => MailKind::Ses,
            Some(other) => bail!("--mail must be store or ses, not {other}"),
        };
        Ok(options)
    }
}

fn parse_store(value: &str) -> anyhow::Result<StoreKind> {
    match value {
        "embedded" => Ok(StoreKind::Embedded),
        "dynamodb" => Ok(StoreKind::Dynamodb),
        other => bail!("--store must be embedded or dynamodb, not {other}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pushmail_http::init_tracing();
    let options = Options::parse()?;
    let config = Config::from_env(true)?;
    let aws = match (options.store, options.mail) {
        (StoreKind::Embedded, MailKind::Store) => None,
        _ => Some(AwsContext::from_env().await),
    };
    let store: Arc<dyn Store> = match (options.store, &aws) {
        (StoreKind::Dynamodb, Some(aws)) => Arc::new(aws.dynamo_store(&config.table)),
        _ => {
            std::fs::create_dir_all(&options.data_dir)
                .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
            let file = options.data_dir.join("pushmail.redb");
            Arc::new(
                EmbeddedStore::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            )
        }
    };
    let mailer: Arc<dyn Mailer> = match (options.mail, &aws) {
        (MailKind::Ses, Some(aws)) => Arc::new(aws.ses_mailer(&config.mail_from)),
        _ => Arc::new(StoreMailer::new(store.clone())),
    };
    let push = Arc::new(PushService::new(
        store.clone(),
        mailer,
        ServiceSettings {
            local_mode: config.local_mode,
        },
    ));
    let admin = Arc::new(AdminService::new(
        store.clone(),
        push.clone(),
        Arc::new(HttpNotifier::new(Duration::from_secs(5))),
    ));

    if options.bootstrap {
        let (token, plaintext) = admin.issue_token(TokenScope::Server, "bootstrap").await?;
        eprintln!(
            "server-wide admin token {} created; it is shown only now:",
            token.id
        );
        println!("{plaintext}");
        return Ok(());
    }
    if store.list_tokens().await?.is_empty() {
        let (_, token) = admin.issue_token(TokenScope::Server, "first-run").await?;
        println!(
            "First run: a server-wide admin token, shown only now:\n\n    export PUSHMAIL_TOKEN={token}\n"
        );
    }
    let subscribe_listener = tokio::net::TcpListener::bind(&options.subscribe_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.subscribe_addr))?;
    let admin_listener = tokio::net::TcpListener::bind(&options.admin_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.admin_addr))?;
    let subscribe_url = format!("http://{}/subscribe", subscribe_listener.local_addr()?);
    let mut background = Vec::new();
    if options.demo {
        let seed = Seed {
            account: Address::parse("alice@example.com")?,
            password: "alice-password".into(),
            secret: "local-dev-secret".into(),
            subscribe_url: subscribe_url.clone(),
            smtp_server: "127.0.0.1".into(),
        };
        pushmail_core::seed::seed(&store, &seed).await?;
        println!(
            "Demo: domain example.com (push secret 'local-dev-secret'), account alice@example.com / alice-password"
        );
        warn!("demo: reporting an IMAP listener alive, though none runs in this process yet");
        background.push(tokio::spawn(imap_standin(store.clone())));
    }
    background.push(tokio::spawn(sweep_activations_every(
        push.clone(),
        ACTIVATION_SWEEP_EVERY,
    )));
    println!(
        "Subscribe URL: {subscribe_url}\nAdmin API:     http://{}/admin\nStore:         {}\n",
        admin_listener.local_addr()?,
        match options.store {
            StoreKind::Embedded => format!(
                "embedded, {}",
                options.data_dir.join("pushmail.redb").display()
            ),
            StoreKind::Dynamodb => format!("DynamoDB table {}", config.table),
        }
    );
    info!(?options, "pushmail running");
    let subscribe = pushmail_http::serve(subscribe_listener, pushmail_subscribe::router(push));
    let admin = pushmail_http::serve(admin_listener, pushmail_admin::router(admin));
    let served = tokio::try_join!(subscribe, admin);
    for task in background {
        task.abort();
    }
    served.map(|_| ())
}

/// Demo only: stands in for the IMAP listener's heartbeat (spec §2 answers 503 without one).
async fn imap_standin(store: Arc<dyn Store>) {
    let mut ticks = tokio::time::interval(IMAP_STANDIN_EVERY);
    loop {
        ticks.tick().await;
        if let Err(error) = store.record_heartbeat("imap", "demo-standin", now()).await {
            error!(%error, "demo IMAP heartbeat failed");
        }
    }
}
