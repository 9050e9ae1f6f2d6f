//! Development aids for trying the Subscribe URL before the admin API and the IMAP listener
//! exist on your machine. Reads the same environment as the function (PUSHMAIL_TABLE, AWS_*).
//!
//!   pushmail-dev seed --domain D --secret S --account A --password P [--subscribe-url U] [--smtp-server H]
//!       turns push on server-wide and for D, adds S as a push secret of D (unless it is one
//!       already), and creates or resets the account A with password P.
//!   pushmail-dev heartbeat [--every SECONDS]
//!       records an IMAP listener heartbeat (once, or every SECONDS until stopped): a stand-in
//!       for the container's IMAP listener, which records its own.
//!   pushmail-dev sign --secret S [--timestamp T] < body.json
//!       prints the X-Push-Timestamp and X-Push-Signature headers for the body on stdin.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pushmail_core::aws::AwsContext;
use pushmail_core::config::Config;
use pushmail_core::protocol::sign;
use pushmail_core::seed::Seed;
use pushmail_core::store::Store;
use pushmail_core::types::{Address, DomainName};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let flags = parse_flags(args)?;
    match command.as_str() {
        "seed" => seed(&flags).await,
        "heartbeat" => heartbeat(&flags).await,
        "sign" => sign_stdin(&flags),
        _ => bail!(
            "usage: pushmail-dev seed|heartbeat|sign [--flag value ...] (see the source's header)"
        ),
    }
}

fn parse_flags(args: impl Iterator<Item = String>) -> anyhow::Result<HashMap<String, String>> {
    let args: Vec<String> = args.collect();
    let mut flags = HashMap::new();
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            bail!("flag `{}` has no value", pair[0]);
        };
        let name = flag
            .strip_prefix("--")
            .with_context(|| format!("expected --flag, got `{flag}`"))?;
        flags.insert(name.to_owned(), value.clone());
    }
    Ok(flags)
}

fn required<'a>(flags: &'a HashMap<String, String>, name: &str) -> anyhow::Result<&'a str> {
    flags
        .get(name)
        .map(String::as_str)
        .with_context(|| format!("--{name} is required"))
}

async fn store() -> impl Store {
    let config = Config::from_env(true).expect("configuration");
    AwsContext::from_env().await.dynamo_store(config.table)
}

async fn seed(flags: &HashMap<String, String>) -> anyhow::Result<()> {
    let domain = DomainName::parse(required(flags, "domain")?)?;
    let account = Address::parse(required(flags, "account")?)?;
    if account.domain() != domain {
        bail!("--account must be an address of --domain");
    }
    let seed = Seed {
        account: account.clone(),
        password: required(flags, "password")?.to_owned(),
        secret: required(flags, "secret")?.to_owned(),
        subscribe_url: flags
            .get("subscribe-url")
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:8080/subscribe".into()),
        smtp_server: flags
            .get("smtp-server")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into()),
    };
    let store: Arc<dyn Store> = Arc::new(store().await);
    pushmail_core::seed::seed(&store, &seed).await?;
    println!("seeded: push on server-wide and for {domain}; secret set; account {account}");
    Ok(())
}

async fn heartbeat(flags: &HashMap<String, String>) -> anyhow::Result<()> {
    let store = store().await;
    let every = flags
        .get("every")
        .map(|s| s.parse::<u64>())
        .transpose()
        .context("--every takes whole seconds")?;
    loop {
        store
            .record_heartbeat("imap", "pushmail-dev", pushmail_core::types::now())
            .await?;
        match every {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds.max(1))).await,
            None => return Ok(()),
        }
    }
}

fn sign_stdin(flags: &HashMap<String, String>) -> anyhow::Result<()> {
    let secret = required(flags, "secret")?;
    let timestamp = match flags.get("timestamp") {
        Some(t) => t.parse().context("--timestamp takes unix seconds")?,
        None => pushmail_core::types::now().timestamp(),
    };
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    println!("X-Push-Timestamp: {timestamp}");
    println!(
        "X-Push-Signature: {}",
        sign(secret.as_bytes(), timestamp, &body)
    );
    Ok(())
}
