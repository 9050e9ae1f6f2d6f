//! The Subscribe URL function. On AWS Lambda it serves API Gateway events; anywhere else it
//! serves the same router on `PUSHMAIL_SUBSCRIBE_ADDR` and sweeps pending activation mails.

use std::sync::Arc;
use std::time::Duration;

use pushmail_core::config::Config;
use pushmail_core::service::sweep_activations_every;
use tracing::info;

/// How often the local server sends activation mails that SES refused earlier.
const ACTIVATION_SWEEP_EVERY: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pushmail_http::init_tracing();
    let on_lambda = pushmail_http::on_lambda();
    let config = Config::from_env(!on_lambda)?;
    let service = Arc::new(config.push_service().await);
    let app = pushmail_subscribe::router(service.clone());
    if on_lambda {
        return pushmail_http::run_on_lambda(app).await;
    }
    let listener = pushmail_http::bind("PUSHMAIL_SUBSCRIBE_ADDR", "127.0.0.1:8080").await?;
    info!(
        url = %format!("http://{}{}", listener.local_addr()?, pushmail_subscribe::SUBSCRIBE_PATH),
        table = %config.table,
        local_mode = config.local_mode,
        "Subscribe URL listening"
    );
    let sweeper = tokio::spawn(sweep_activations_every(service, ACTIVATION_SWEEP_EVERY));
    let served = pushmail_http::serve(listener, app).await;
    sweeper.abort();
    served
}
