//! The admin API as an AWS Lambda (API Gateway HTTP API events). Only a Lambda: on one machine
//! the `pushmail` process serves the same router; `pushmail bootstrap --store dynamodb` prints
//! the first admin token of a table.

use pushmail_runtime::{Settings, logging, open_on_aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = Settings::for_lambda()?;
    logging::init_tracing(settings.log_format());
    let admin = open_on_aws(&settings).await.admin();
    pushmail_http::run_on_lambda(pushmail_admin_api::router(admin)).await
}
