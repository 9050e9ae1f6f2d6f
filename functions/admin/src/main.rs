//! The admin API function. On AWS Lambda it serves API Gateway events; anywhere else it serves
//! the same router on `PUSHMAIL_ADMIN_ADDR`.
//!
//!   admin                      serve
//!   admin bootstrap [LABEL]    create a server-wide admin token and print it (once)

use std::sync::Arc;

use pushmail_core::config::Config;
use pushmail_core::types::TokenScope;
use tracing::info;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let on_lambda = pushmail_http::on_lambda();
    let config = Config::from_env(!on_lambda)?;
    let mut args = std::env::args().skip(1);
    if let Some(command) = args.next() {
        anyhow::ensure!(command == "bootstrap", "usage: admin [bootstrap [LABEL]]");
        let label = args.next().unwrap_or_else(|| "bootstrap".to_owned());
        let service = config.admin_service().await;
        let (token, plaintext) = service.issue_token(TokenScope::Server, &label).await?;
        eprintln!(
            "server-wide admin token {} created in table {}; it is shown only now:",
            token.id, config.table
        );
        println!("{plaintext}");
        return Ok(());
    }
    pushmail_http::init_tracing();
    let app = pushmail_admin::router(Arc::new(config.admin_service().await));
    if on_lambda {
        return pushmail_http::run_on_lambda(app).await;
    }
    let listener = pushmail_http::bind("PUSHMAIL_ADMIN_ADDR", "127.0.0.1:8081").await?;
    info!(url = %format!("http://{}/admin", listener.local_addr()?), table = %config.table, "admin API listening");
    pushmail_http::serve(listener, app).await
}
