//! The Subscribe URL function. On AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves API
//! Gateway events; anywhere else it serves the same router on `PUSHMAIL_SUBSCRIBE_ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pushmail_core::config::Config;
use pushmail_core::service::PushService;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

const DEFAULT_LOCAL_ADDR: &str = "127.0.0.1:8080";
/// How often the local server sends activation mails that SES refused earlier.
const ACTIVATION_SWEEP_EVERY: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    init_tracing(on_lambda);
    let config = Config::from_env(!on_lambda)?;
    let service = Arc::new(config.push_service().await);
    let app = pushmail_subscribe::router(service.clone());
    if on_lambda {
        return lambda_http::run(app).await.map_err(|e| anyhow::anyhow!(e));
    }

    let address: SocketAddr = std::env::var("PUSHMAIL_SUBSCRIBE_ADDR")
        .unwrap_or_else(|_| DEFAULT_LOCAL_ADDR.to_owned())
        .parse()
        .context("PUSHMAIL_SUBSCRIBE_ADDR must be host:port")?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    info!(
        url = %format!("http://{}{}", listener.local_addr()?, pushmail_subscribe::SUBSCRIBE_PATH),
        table = %config.table,
        local_mode = config.local_mode,
        "Subscribe URL listening"
    );
    let sweeper = tokio::spawn(sweep_activations(service));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    sweeper.abort();
    info!("stopped");
    Ok(())
}

async fn sweep_activations(service: Arc<PushService>) {
    let mut ticks = tokio::time::interval(ACTIVATION_SWEEP_EVERY);
    loop {
        ticks.tick().await;
        match service.deliver_due_activations(chrono::Utc::now()).await {
            Ok(report) if report != Default::default() => info!(?report, "activation sweep"),
            Ok(_) => {}
            Err(error) => error!(%error, "activation sweep failed"),
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}

/// JSON logs on Lambda (with the invocation's request id from the runtime's span), text
/// locally; `PUSHMAIL_LOG_FORMAT=json|text` overrides, `RUST_LOG` filters.
fn init_tracing(on_lambda: bool) {
    let json = match std::env::var("PUSHMAIL_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => on_lambda,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .init();
    } else {
        builder.init();
    }
}
