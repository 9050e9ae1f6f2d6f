//! The yardstick for Lambda start-up (infra/bench/lambda_init.py): a bare `lambda_http` + axum
//! function with one route and nothing else, built with the same release profile as the real
//! functions.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    lambda_http::run(app).await
}
