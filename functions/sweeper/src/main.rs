//! The activation sweep (spec §3) as a scheduled AWS Lambda: sends activation mails that are
//! still pending because SES refused them at SUBSCRIBE time. An EventBridge schedule invokes
//! it every minute; the `pushmail` process runs the same sweep in-process.

use lambda_runtime::{LambdaEvent, service_fn};
use pushmail_runtime::{Settings, logging, open_on_aws};
use serde_json::{Value, json};
use tracing::info;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings = Settings::for_lambda()?;
    logging::init_tracing(settings.log_format());
    let push = open_on_aws(&settings).await.push();
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let push = push.clone();
        async move {
            let report = push
                .deliver_due_activations(pushmail_core::types::now())
                .await?;
            info!(?report, "activation sweep");
            Ok::<_, lambda_runtime::Error>(json!({
                "sent": report.sent, "deferred": report.deferred, "discarded": report.discarded,
            }))
        }
    }))
    .await
}
