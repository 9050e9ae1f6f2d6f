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
use std::time::Duration;

use anyhow::{Context, bail};
use pushmail_core::aws::AwsContext;
use pushmail_core::config::Config;
use pushmail_core::password::hash_password;
use pushmail_core::protocol::{MAX_LIVE_SECRETS, sign};
use pushmail_core::store::{SecretAdd, Store};
use pushmail_core::types::{Account, Address, Domain, DomainName, PushSecret, ServerSettings};

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
    let domain_name = DomainName::parse(required(flags, "domain")?)?;
    let secret = required(flags, "secret")?;
    let address = Address::parse(required(flags, "account")?)?;
    let password = required(flags, "password")?;
    if address.domain() != domain_name {
        bail!("--account must be an address of --domain");
    }
    let store = store().await;
    let now = pushmail_core::types::now();
    store
        .put_server_settings(&ServerSettings { push_enabled: true })
        .await?;
    let mut domain = store
        .domain(&domain_name)
        .await?
        .unwrap_or_else(|| Domain::new(domain_name.clone(), now));
    domain.push_enabled = true;
    domain.subscribe_url = Some(
        flags
            .get("subscribe-url")
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:8080/subscribe".into()),
    );
    domain.smtp_server = Some(
        flags
            .get("smtp-server")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".into()),
    );
    store.put_domain(&domain).await?;
    let secrets = store.push_secrets(&domain_name).await?;
    if !secrets.iter().any(|s| s.value == secret) {
        let id = format!("ps_{}", &uuid_like());
        let secret = PushSecret {
            id,
            value: secret.to_owned(),
            created_at: now,
        };
        match store
            .add_push_secret(&domain_name, &secret, MAX_LIVE_SECRETS)
            .await?
        {
            SecretAdd::Added => {}
            SecretAdd::TooMany => {
                bail!("{domain_name} already has two push secrets; retire one first")
            }
            SecretAdd::NoSuchDomain => bail!("{domain_name} vanished while seeding"),
        }
    }
    store
        .put_account(&Account {
            address: address.clone(),
            password_hash: hash_password(password)?,
            enabled: true,
            display_name: None,
            pushed_folders: Vec::new(),
            created_at: now,
        })
        .await?;
    println!("seeded: push on server-wide and for {domain_name}; secret set; account {address}");
    Ok(())
}

fn uuid_like() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
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
