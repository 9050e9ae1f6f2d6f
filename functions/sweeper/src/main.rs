//! The sweeps as a scheduled AWS Lambda, every minute (EventBridge): activation mails still
//! pending because SES refused them at SUBSCRIBE time (spec §3), and new-mail notices due for a
//! retry (spec §4) — the listeners' process sends notices at once and runs both sweeps itself;
//! this one keeps retries going whatever that process is doing.

use lambda_runtime::{LambdaEvent, service_fn};
use pushmail_push::dispatcher::DispatchSettings;
use pushmail_runtime::{Settings, logging, open_on_aws};
use serde_json::{Value, json};
use tracing::info;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = Settings::for_lambda()?;
    logging::init_tracing(settings.log_format());
    let services = open_on_aws(&settings).await;
    let push = services.push();
    let dispatcher = services.dispatcher(DispatchSettings::default());
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let (push, dispatcher) = (push.clone(), dispatcher.clone());
        async move {
            let now = pushmail_core::types::now();
            let report = push.deliver_due_activations(now).await?;
            info!(?report, "activation sweep");
            let accounts = dispatcher.clone().pass(now).await?;
            dispatcher.settle().await;
            info!(accounts, "notice sweep");
            Ok::<_, lambda_runtime::Error>(json!({
                "sent": report.sent, "deferred": report.deferred, "discarded": report.discarded,
                "notice_accounts": accounts,
            }))
        }
    }))
    .await
}
