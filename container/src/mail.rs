//! The mail listeners' settings and wiring: SMTP inbound and submission, their certificate, and
//! the relay for mail to other domains (a smarthost, or SES when system mail goes through SES).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_core::hints::{Arrivals, ChangeHints};
use pushmail_core::types::Address;
use pushmail_imap::{Imap, ImapSettings};
use pushmail_runtime::Settings;
use pushmail_runtime::aws::AwsContext;
use pushmail_runtime::settings::MailKind;
use pushmail_smtp::{
    DataBudget, Outgoing, RelayPolicy, Smarthost, Smtp, SmtpSettings, Transport, Verdict,
};
use pushmail_store::Store;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

#[derive(Debug, clap::Args)]
pub struct MailOptions {
    /// Where SMTP listens for mail to the local accounts (the inbound role, port 25's job).
    #[arg(long, env = "PUSHMAIL_SMTP_ADDR", default_value = "127.0.0.1:2525")]
    pub smtp_addr: SocketAddr,
    /// Where SMTP listens for the devices' mail (the submission role, port 587's job: AUTH).
    #[arg(
        long,
        env = "PUSHMAIL_SUBMISSION_ADDR",
        default_value = "127.0.0.1:2587"
    )]
    pub submission_addr: SocketAddr,
    /// The name the mail listeners give themselves (greeting, Received headers, bounces).
    #[arg(long, env = "PUSHMAIL_HOSTNAME", default_value = "localhost")]
    pub hostname: String,
    /// The largest message SMTP accepts, in octets.
    #[arg(long, env = "PUSHMAIL_SMTP_MAX_MESSAGE_BYTES", default_value_t = 25 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1024 * 1024 * 1024))]
    pub smtp_max_message_bytes: u64,
    /// The mail listeners' certificate chain (PEM), for STARTTLS. Without one, STARTTLS is
    /// not offered (with --demo a self-signed certificate is made at start).
    #[arg(long, env = "PUSHMAIL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "PUSHMAIL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The certificate chain itself (PEM), instead of `--tls-cert`'s file: where a secret store
    /// hands it over as a variable (ECS from Secrets Manager). Never logged.
    #[arg(
        long,
        env = "PUSHMAIL_TLS_CERT_PEM",
        hide_env_values = true,
        requires = "tls_key_pem",
        conflicts_with = "tls_cert"
    )]
    pub tls_cert_pem: Option<crate::tls::Pem>,
    /// The private key itself (PEM), instead of `--tls-key`'s file. Never logged.
    #[arg(
        long,
        env = "PUSHMAIL_TLS_KEY_PEM",
        hide_env_values = true,
        requires = "tls_cert_pem",
        conflicts_with = "tls_key"
    )]
    pub tls_key_pem: Option<crate::tls::Pem>,
    /// Allow AUTH without TLS from loopback peers on the submission listener (local tests; on
    /// with --demo). Never from other addresses.
    #[arg(long, env = "PUSHMAIL_SMTP_PLAINTEXT_AUTH_ON_LOOPBACK")]
    pub smtp_plaintext_auth_on_loopback: bool,
    /// Where IMAP listens (STARTTLS; LOGIN only over TLS, or from loopback with
    /// --imap-plaintext-login-on-loopback).
    #[arg(long, env = "PUSHMAIL_IMAP_ADDR", default_value = "127.0.0.1:1143")]
    pub imap_addr: SocketAddr,
    /// Where IMAP listens with TLS from the first byte (IMAPS, port 993's job); only with a
    /// certificate (--tls-cert, or --demo's).
    #[arg(long, env = "PUSHMAIL_IMAPS_ADDR", default_value = "127.0.0.1:1993")]
    pub imaps_addr: SocketAddr,
    /// Allow LOGIN without TLS from loopback peers on the IMAP listener (local tests; on with
    /// --demo). Never from other addresses.
    #[arg(long, env = "PUSHMAIL_IMAP_PLAINTEXT_LOGIN_ON_LOOPBACK")]
    pub imap_plaintext_login_on_loopback: bool,
    /// IMAP sessions open at once (IMAP and IMAPS each). A push service holds one idling
    /// session per integrated account, so this is sized for accounts, not people; raise the
    /// process's open-files limit with it.
    #[arg(long, env = "PUSHMAIL_IMAP_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub imap_max_connections: u64,
    /// IMAP sessions from one address. A push service connects from few addresses with many
    /// accounts; a peer that never logs in is logged out after a minute.
    #[arg(long, env = "PUSHMAIL_IMAP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub imap_max_connections_per_source: u64,
    /// The account that mail to `postmaster` (bare, or at any local domain) goes to (RFC 5321
    /// §4.5.1 says it must be taken). Without one such mail is refused; --demo uses alice.
    #[arg(long, env = "PUSHMAIL_POSTMASTER", value_parser = parse_address)]
    pub postmaster: Option<Address>,
    /// SMTP sessions open at once (inbound and submission each).
    #[arg(long, env = "PUSHMAIL_SMTP_MAX_CONNECTIONS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub smtp_max_connections: u64,
    /// SMTP sessions from one address (an IPv6 /64 counts as one). An upstream relay opens
    /// many at once (Postfix up to 20 per destination by default, 50 per client in its own
    /// smtpd).
    #[arg(long, env = "PUSHMAIL_SMTP_MAX_CONNECTIONS_PER_SOURCE", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub smtp_max_connections_per_source: u64,
    /// Addresses or CIDR blocks (comma-separated) of a load balancer sending PROXY protocol
    /// v2 (AWS's Network Load Balancer, with proxy protocol v2 on): connections to the SMTP and
    /// IMAP listeners from these must start with the header, whose client address the
    /// per-source limits, the logs and the sessions then use; from elsewhere none is read.
    /// Off when unset.
    #[arg(long, env = "PUSHMAIL_PROXY_PROTOCOL_FROM", value_parser = pushmail_listener::TrustedProxies::parse)]
    pub proxy_protocol_from: Option<pushmail_listener::TrustedProxies>,
    /// MiB that the messages being received over SMTP (both roles, all sessions) may hold in
    /// memory at once; a message that finds it spent is answered 452 4.3.1 and sent again
    /// later by its sender.
    #[arg(long, env = "PUSHMAIL_SMTP_DATA_MEMORY_MIB", default_value_t = 192, value_parser = clap::value_parser!(u64).range(26..=65_536))]
    pub smtp_data_memory_mib: u64,
    /// Logged-in IMAP sessions of one account at once (mail clients open a few each).
    #[arg(long, env = "PUSHMAIL_IMAP_MAX_SESSIONS_PER_ACCOUNT", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub imap_max_sessions_per_account: u64,
    /// IMAP sessions with COMPRESS=DEFLATE on at once (each holds about 50 KB while idle, an
    /// uncompressed one 3 KB); beyond it COMPRESS is refused and the client goes on without.
    #[arg(long, env = "PUSHMAIL_IMAP_MAX_COMPRESSED_SESSIONS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub imap_max_compressed_sessions: u64,
    /// An SNS topic over which listener processes sharing the table tell each other which
    /// mailboxes changed, so IMAP idlers wake at once whichever process took the mail (each
    /// process reads its own SQS queue, made at start). Without one, only this process's
    /// changes wake idlers at once; the others' are found by polling.
    #[arg(long, env = "PUSHMAIL_HINT_TOPIC_ARN")]
    pub hint_topic_arn: Option<String>,
    /// Seconds an SQS receive waits for a hint (long polling; 1 to 20).
    #[arg(long, env = "PUSHMAIL_HINT_WAIT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub hint_wait_secs: u64,
    /// Seconds between an idling IMAP session's looks at the change log when no hint came:
    /// the bound on how late a lost hint makes an EXISTS. Default: 1 without --hint-topic-arn
    /// (hints from other processes only come this way), 30 with it (each look is a read).
    #[arg(long, env = "PUSHMAIL_IMAP_IDLE_POLL_SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub imap_idle_poll_secs: Option<u64>,
    /// The relay (host:port, plain SMTP) for submitted mail to other domains. Without one, such
    /// mail goes through SES when system mail does (--mail ses), else it is refused at RCPT.
    #[arg(long, env = "PUSHMAIL_SMARTHOST")]
    pub smarthost: Option<String>,
    /// Seconds before the first retry of a relay that failed; each further wait doubles (up to
    /// an hour).
    #[arg(long, env = "PUSHMAIL_RELAY_FIRST_RETRY_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub relay_first_retry_secs: u64,
    /// Seconds after which mail the relay still has not taken is bounced to its sender.
    #[arg(long, env = "PUSHMAIL_RELAY_GIVE_UP_SECS", default_value_t = 5 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub relay_give_up_secs: u64,
}

fn parse_address(text: &str) -> Result<Address, String> {
    Address::parse(text).map_err(|_| format!("{text:?} is not an address"))
}

/// Where --demo sends postmaster's mail: the demo account.
const DEMO_POSTMASTER: &str = "alice@example.com";

/// Both SMTP roles and the relay queue's worker, ready to serve.
pub struct MailListeners {
    pub inbound: Arc<Smtp>,
    pub submission: Arc<Smtp>,
    pub imap: Arc<Imap>,
    /// IMAPS, when there is a certificate.
    pub imaps: Option<Arc<Imap>>,
    pub outgoing: Option<Arc<Outgoing>>,
}

/// How long an IMAP session may last, whatever it does: long, since a push service's idling
/// session is meant to stay (inactivity ends one sooner: 30 minutes, 1 before login).
const IMAP_SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

impl MailOptions {
    /// The IMAP listeners' bounds.
    pub fn imap_limits(&self) -> pushmail_listener::Limits {
        pushmail_listener::Limits {
            max_connections: self.imap_max_connections as usize,
            max_connections_per_source: self.imap_max_connections_per_source as usize,
            session_timeout: IMAP_SESSION_LIFETIME,
            proxies: self.proxy_protocol_from.clone().unwrap_or_default(),
        }
    }

    /// The SMTP listeners' bounds.
    pub fn smtp_limits(&self) -> pushmail_listener::Limits {
        pushmail_listener::Limits {
            max_connections: self.smtp_max_connections as usize,
            max_connections_per_source: self.smtp_max_connections_per_source as usize,
            proxies: self.proxy_protocol_from.clone().unwrap_or_default(),
            ..pushmail_listener::Limits::default()
        }
    }

    pub async fn build(
        &self,
        settings: &Settings,
        store: Arc<dyn Store>,
        demo: bool,
        noticed: Arc<pushmail_core::hints::NoticeWaker>,
        hints: ChangeHints,
    ) -> anyhow::Result<MailListeners> {
        let tls = match (
            &self.tls_cert,
            &self.tls_key,
            &self.tls_cert_pem,
            &self.tls_key_pem,
        ) {
            (Some(cert), Some(key), _, _) => Some(crate::tls::from_files(cert, key)?),
            (_, _, Some(cert), Some(key)) => Some(crate::tls::from_pem(cert, key)?),
            _ if demo => Some(crate::tls::self_signed(&self.hostname)?),
            _ => {
                warn!("no --tls-cert: STARTTLS is not offered");
                None
            }
        };
        let smtp_settings = SmtpSettings {
            hostname: self.hostname.clone(),
            max_message_bytes: usize::try_from(self.smtp_max_message_bytes).unwrap_or(usize::MAX),
            plaintext_auth_on_loopback: self.smtp_plaintext_auth_on_loopback || demo,
            // Past three quarters full, new sessions push out the longest-idle ones.
            shed_above: (self.smtp_max_connections as usize * 3 / 4).max(1),
            postmaster: self
                .postmaster
                .clone()
                .or_else(|| demo.then(|| Address::parse(DEMO_POSTMASTER).ok()).flatten()),
            ..SmtpSettings::default()
        };
        let outgoing = self.transport(settings).await.map(|transport| {
            Arc::new(Outgoing::new(
                store.clone(),
                transport,
                RelayPolicy {
                    first_retry: Duration::from_secs(self.relay_first_retry_secs),
                    give_up_after: Duration::from_secs(self.relay_give_up_secs),
                    ..RelayPolicy::default()
                },
                self.hostname.clone(),
            ))
        });
        let arrivals = Arrivals::default()
            .waking(noticed.clone())
            .hinting(hints.clone());
        let finish = |smtp: Smtp, tls: &Option<TlsAcceptor>| {
            let smtp = smtp.with_arrivals(arrivals.clone());
            match tls {
                Some(acceptor) => smtp.with_tls(acceptor.clone()),
                None => smtp,
            }
        };
        let imap_settings = ImapSettings {
            hostname: self.hostname.clone(),
            plaintext_login_on_loopback: self.imap_plaintext_login_on_loopback || demo,
            max_message_bytes: usize::try_from(self.smtp_max_message_bytes).unwrap_or(usize::MAX),
            idle_poll: Duration::from_secs(self.imap_idle_poll_secs.unwrap_or(
                match self.hint_topic_arn {
                    Some(_) => 30,
                    None => 1,
                },
            )),
            max_sessions_per_account: self.imap_max_sessions_per_account as usize,
            max_compressed_sessions: usize::try_from(self.imap_max_compressed_sessions)
                .unwrap_or(usize::MAX),
            ..ImapSettings::default()
        };
        let imap = Imap::new(store.clone(), imap_settings.clone(), hints.clone());
        let (imap, imaps) = match &tls {
            Some(acceptor) => {
                let imaps = Imap::new(store.clone(), imap_settings, hints.clone())
                    .sharing_limits_with(&imap)
                    .with_tls(acceptor.clone())
                    .implicit_tls();
                (imap.with_tls(acceptor.clone()), Some(Arc::new(imaps)))
            }
            None => (imap, None),
        };
        // One budget for the messages both roles hold in memory while they arrive.
        let budget = DataBudget::new(self.smtp_data_memory_mib as usize * 1024 * 1024);
        Ok(MailListeners {
            imap: Arc::new(imap),
            imaps,
            inbound: Arc::new(finish(
                Smtp::inbound(store.clone(), smtp_settings.clone())
                    .with_data_budget(budget.clone()),
                &tls,
            )),
            submission: Arc::new(finish(
                Smtp::submission(store, smtp_settings, outgoing.clone()).with_data_budget(budget),
                &tls,
            )),
            outgoing,
        })
    }

    async fn transport(&self, settings: &Settings) -> Option<Arc<dyn Transport>> {
        if let Some(address) = &self.smarthost {
            return Some(Arc::new(Smarthost {
                address: address.clone(),
                hostname: self.hostname.clone(),
                timeout: Duration::from_secs(120),
            }));
        }
        if settings.mail_kind() == MailKind::Ses {
            let client = AwsContext::from_env().await.ses_client();
            return Some(Arc::new(SesTransport { client }));
        }
        warn!("no --smarthost and no SES: submitted mail to other domains is refused");
        None
    }
}

/// SES v1 `SendRawEmail`: one call for every recipient, so one verdict for all.
struct SesTransport {
    client: aws_sdk_ses::Client,
}

#[async_trait]
impl Transport for SesTransport {
    async fn send(&self, sender: &Address, recipients: &[Address], raw: &[u8]) -> Vec<Verdict> {
        let message = aws_sdk_ses::types::RawMessage::builder()
            .data(aws_sdk_ses::primitives::Blob::new(raw))
            .build();
        let message = match message {
            Ok(message) => message,
            Err(error) => return vec![Verdict::Permanent(error.to_string()); recipients.len()],
        };
        let sent = self
            .client
            .send_raw_email()
            .source(sender.as_str())
            .set_destinations(Some(
                recipients.iter().map(|r| r.as_str().to_owned()).collect(),
            ))
            .raw_message(message)
            .send()
            .await;
        let verdict = match sent {
            Ok(_) => Verdict::Accepted,
            Err(error) => {
                let text = aws_sdk_ses::error::DisplayErrorContext(&error).to_string();
                // Refused content or an unverified address will not pass on a retry.
                match error.as_service_error() {
                    Some(service) if service.is_message_rejected() => Verdict::Permanent(text),
                    Some(service) if service.is_mail_from_domain_not_verified_exception() => {
                        Verdict::Permanent(text)
                    }
                    _ => Verdict::Temporary(text),
                }
            }
        };
        vec![verdict; recipients.len()]
    }
}
