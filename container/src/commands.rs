//! The operator's one-shot commands.

use std::io::Read;

use anyhow::Context;
use pushmail_core::protocol::sign as sign_body;
use pushmail_core::types::{Address, TokenScope, now};
use pushmail_runtime::seed::{Seed, seed as seed_store};
use pushmail_runtime::{Settings, open};

#[derive(Debug, clap::Args)]
pub struct Bootstrap {
    #[command(flatten)]
    settings: Settings,
    /// The token's label, shown in listings.
    #[arg(long, default_value = "bootstrap")]
    label: String,
}

pub async fn bootstrap(args: Bootstrap) -> anyhow::Result<()> {
    let (token, plaintext) = open(&args.settings)
        .await?
        .admin()
        .issue_token(TokenScope::Server, &args.label)
        .await?;
    eprintln!(
        "server-wide admin token {} created ({}); it is shown only now:",
        token.id,
        args.settings.describe_store()
    );
    println!("{plaintext}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    settings: Settings,
    /// The account to create or reset; push is turned on for its domain.
    #[arg(long)]
    account: String,
    /// The account's password.
    #[arg(long, env = "PUSHMAIL_SEED_PASSWORD", hide_env_values = true)]
    password: String,
    /// A push secret of the domain (added unless the domain has it already).
    #[arg(long, env = "PUSHMAIL_SEED_SECRET", hide_env_values = true)]
    secret: String,
    /// The domain's Subscribe URL.
    #[arg(long, default_value = "http://127.0.0.1:8080/subscribe")]
    subscribe_url: String,
    /// The domain's SMTP server.
    #[arg(long, default_value = "127.0.0.1")]
    smtp_server: String,
}

pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let account = Address::parse(&args.account)?;
    let services = open(&args.settings).await?;
    let domain = account.domain();
    seed_store(
        &services.store,
        &Seed {
            account: account.clone(),
            password: args.password,
            secret: args.secret,
            subscribe_url: args.subscribe_url,
            smtp_server: args.smtp_server,
        },
    )
    .await?;
    println!("seeded: push on server-wide and for {domain}; secret set; account {account}");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct Sign {
    /// The domain's push secret.
    #[arg(long, env = "PUSHMAIL_SIGN_SECRET", hide_env_values = true)]
    secret: String,
    /// Unix seconds to sign with [default: now].
    #[arg(long)]
    timestamp: Option<i64>,
}

pub fn sign(args: Sign) -> anyhow::Result<()> {
    let timestamp = args.timestamp.unwrap_or_else(|| now().timestamp());
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading the body from standard input")?;
    println!("X-Push-Timestamp: {timestamp}");
    println!(
        "X-Push-Signature: {}",
        sign_body(args.secret.as_bytes(), timestamp, &body)
    );
    Ok(())
}
