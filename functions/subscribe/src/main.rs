//! The Subscribe URL as an AWS Lambda (API Gateway HTTP API events). Only a Lambda: on one
//! machine the `pushmail` process serves the same router.

//!
//! Its metrics (`pushmail_push_requests_total` by outcome) go out as CloudWatch Embedded Metric
//! Format lines after each request, under the namespace `pushmail`.

use pushmail_runtime::{Settings, logging, open_on_aws};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let settings = Settings::for_lambda()?;
    logging::init_tracing(settings.log_format());
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("pushmail")
        .init()?;
    let push = open_on_aws(&settings).await.push();
    let router = pushmail_push::router(push).layer(axum::middleware::map_response(
        move |response: axum::response::Response| async move {
            // Written before the answer leaves, while the invocation still runs.
            if let Err(error) = metrics.flush(std::io::stdout()) {
                tracing::warn!(%error, "metrics not written");
            }
            response
        },
    ));
    pushmail_http::run_on_lambda(router).await
}
