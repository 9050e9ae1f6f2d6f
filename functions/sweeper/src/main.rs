//! The activation sweep (spec §3): sends activation mails that are still pending because SES
//! refused them at SUBSCRIBE time. On AWS an EventBridge schedule invokes it every minute; run
//! anywhere else, it sweeps once and prints what it did.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use pushmail_core::config::Config;
use pushmail_core::service::{PushService, SweepReport};
use serde_json::{Value, json};
use tracing::info;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pushmail_http::init_tracing();
    let on_lambda = pushmail_http::on_lambda();
    let service = Arc::new(Config::from_env(!on_lambda)?.push_service().await);
    if !on_lambda {
        println!("{}", sweep(&service).await?);
        return Ok(());
    }
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let service = service.clone();
        async move {
            sweep(&service)
                .await
                .map_err(|e| lambda_runtime::Error::from(e.to_string()))
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

async fn sweep(service: &PushService) -> Result<Value, pushmail_core::store::StoreError> {
    let SweepReport {
        sent,
        deferred,
        discarded,
    } = service
        .deliver_due_activations(pushmail_core::types::now())
        .await?;
    info!(sent, deferred, discarded, "activation sweep");
    Ok(json!({"sent": sent, "deferred": deferred, "discarded": discarded}))
}
