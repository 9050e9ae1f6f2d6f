//! One settings type for every pushmail binary: each field is a flag with its environment
//! variable (`pushmail --help` lists them), and the Lambda functions read the same variables.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;

/// See `--hash-concurrency`.
const DEFAULT_HASH_CONCURRENCY: u16 = pushmail_core::password::DEFAULT_HASH_CONCURRENCY as u16;

pub const DEFAULT_TABLE: &str = "pushmail";
pub const DEFAULT_BUCKET: &str = "pushmail-mail";
pub const DEFAULT_MAIL_FROM: &str = "pushmail <push@pushmail.test>";

/// Where pushmail keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A redb file in the data directory: one machine, nothing else to run.
    Embedded,
    /// The DynamoDB table (AWS, LocalStack or moto through `AWS_ENDPOINT_URL`).
    Dynamodb,
}

/// Where system mail (the activation mail) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MailKind {
    /// Kept in the store, readable through the admin API.
    Store,
    /// Sent through Amazon SES (v1).
    Ses,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// What the store, the mailer and the services are built from.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Settings {
    /// Where records are kept.
    #[arg(long, env = "PUSHMAIL_STORE", value_enum, default_value = "embedded")]
    pub store: StoreKind,
    /// The embedded store's folder (its file is `pushmail.redb` in it).
    #[arg(long, env = "PUSHMAIL_DATA_DIR", default_value = "pushmail-data")]
    pub data_dir: PathBuf,
    /// The DynamoDB table, with `--store dynamodb`.
    #[arg(long, env = "PUSHMAIL_TABLE", default_value = DEFAULT_TABLE)]
    pub table: String,
    /// The S3 bucket for message bodies, with `--store dynamodb`.
    #[arg(long, env = "PUSHMAIL_BUCKET", default_value = DEFAULT_BUCKET)]
    pub bucket: String,
    /// Where system mail goes [default: ses with --store dynamodb, else store].
    #[arg(long, env = "PUSHMAIL_MAIL", value_enum)]
    pub mail: Option<MailKind>,
    /// The sender of system mail; with SES its domain must be a verified identity.
    #[arg(long, env = "PUSHMAIL_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
    /// Allow plain-http callbacks to loopback hosts (spec §2) [default: on, except on Lambda].
    #[arg(long, env = "PUSHMAIL_LOCAL_MODE", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    pub local_mode: Option<bool>,
    /// Password checks (argon2id, 19 MiB each) run at once; more wait briefly, then are refused
    /// with 429. Bounds the memory a flood of logins can take: this × 19 MiB.
    #[arg(long, env = "PUSHMAIL_HASH_CONCURRENCY", default_value_t = DEFAULT_HASH_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub hash_concurrency: u16,
    /// Seconds a verified login is trusted without argon2 again (a keyed digest of address,
    /// password and the account's revision, kept in memory only; any change to the account ends
    /// it at once). 0 turns it off.
    #[arg(long, env = "PUSHMAIL_CREDENTIAL_CACHE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub credential_cache_secs: u64,
    /// Verified logins kept at most (the oldest forgotten first).
    #[arg(long, env = "PUSHMAIL_CREDENTIAL_CACHE_ENTRIES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub credential_cache_entries: u64,
    /// Wrong passwords allowed per account (and per surface) in one window; the next checks
    /// are refused until the window ends.
    #[arg(long, env = "PUSHMAIL_LOGIN_FAILURES_PER_ACCOUNT", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub login_failures_per_account: u32,
    /// The failure window, in seconds.
    #[arg(long, env = "PUSHMAIL_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(i64).range(60..=86_400))]
    pub login_failure_window_secs: i64,
    /// Wrong passwords from one source (an IPv6 /64) in a window before its checks are slowed.
    #[arg(long, env = "PUSHMAIL_LOGIN_SOURCE_FREE_FAILURES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub login_source_free_failures: u32,
    /// The most a source's check is slowed, in seconds (a second per failure past the free ones).
    #[arg(long, env = "PUSHMAIL_LOGIN_SOURCE_MAX_DELAY_SECS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=60))]
    pub login_source_max_delay_secs: u32,
    /// Log format [default: json on Lambda, else text]; `RUST_LOG` filters (default info).
    #[arg(long, env = "PUSHMAIL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// [`Settings`] as a command line of their own, for the Lambda mains (environment only).
#[derive(Debug, clap::Parser)]
struct LambdaCommand {
    #[command(flatten)]
    settings: Settings,
}

/// True inside AWS Lambda (and under `cargo lambda watch`).
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

impl Settings {
    /// The settings of a Lambda function: the environment's variables, on DynamoDB (and SES,
    /// unless `PUSHMAIL_MAIL` says otherwise). Open its store with [`crate::open_on_aws`].
    pub fn for_lambda() -> Result<Self, clap::Error> {
        use clap::Parser;
        let mut settings = LambdaCommand::try_parse_from(["pushmail-lambda"])?.settings;
        settings.store = StoreKind::Dynamodb;
        Ok(settings)
    }

    /// Mail goes where the store is unless said otherwise: kept locally, SES on AWS.
    pub fn mail_kind(&self) -> MailKind {
        self.mail.unwrap_or(match self.store {
            StoreKind::Embedded => MailKind::Store,
            StoreKind::Dynamodb => MailKind::Ses,
        })
    }

    pub fn local_mode(&self) -> bool {
        self.local_mode.unwrap_or(!on_lambda())
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(if on_lambda() {
            LogFormat::Json
        } else {
            LogFormat::Text
        })
    }

    /// The embedded store's file.
    pub fn database_file(&self) -> PathBuf {
        self.data_dir.join("pushmail.redb")
    }

    /// Says where the records are, for the start-up banner.
    pub fn describe_store(&self) -> String {
        match self.store {
            StoreKind::Embedded => format!("embedded, {}", self.database_file().display()),
            StoreKind::Dynamodb => format!("DynamoDB table {}", self.table),
        }
    }
}

impl Settings {
    /// The process's password checks: how many hash at once, and how long a verified login is
    /// trusted. Once, before the first login.
    pub fn configure_password_checks(&self) {
        pushmail_core::password::set_hash_concurrency(self.hash_concurrency.into());
        pushmail_store::credentials::CredentialLimits::configure(
            pushmail_store::credentials::CredentialLimits {
                account_failures: self.login_failures_per_account,
                window_secs: self.login_failure_window_secs,
                source_free_failures: self.login_source_free_failures,
                source_max_delay_secs: self.login_source_max_delay_secs,
            },
        );
        pushmail_core::verified::VerifiedCache::configure(
            std::time::Duration::from_secs(self.credential_cache_secs),
            usize::try_from(self.credential_cache_entries).unwrap_or(usize::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        LambdaCommand::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map(|c| c.settings)
    }

    #[test]
    fn defaults_and_overrides() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings.table, DEFAULT_TABLE);
        assert_eq!(settings.store, StoreKind::Embedded);
        assert_eq!(settings.mail_kind(), MailKind::Store);
        let settings =
            parse(&["--store", "dynamodb", "--table", "t1", "--local-mode", "0"]).unwrap();
        assert_eq!(settings.table, "t1");
        assert_eq!(settings.mail_kind(), MailKind::Ses);
        assert!(!settings.local_mode());
        assert!(parse(&["--local-mode", "maybe"]).is_err());
        assert!(parse(&["--store", "postgres"]).is_err());
        assert!(parse(&["--no-such-flag"]).is_err());
    }
}
