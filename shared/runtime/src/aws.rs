//! The one place that loads AWS configuration; nothing past the store and mailer sees AWS types.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pushmail_push::mailer::SesMailer;
use pushmail_store::{DynamoStore, DynamoStoreConfig, S3Bodies};

/// One AWS request's try, and a whole call with its retries. Without them a connection that
/// stalls (half open, or an endpoint that accepts and never answers) holds its caller, an IMAP
/// session or a SUBSCRIBE, for ever. A try outlasts SQS's 20 s long poll (the change hints).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const CALL_TIMEOUT: Duration = Duration::from_secs(65);
/// The SDK's own default, kept.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// Loaded AWS settings (region, credentials, and `AWS_ENDPOINT_URL` for LocalStack or moto).
/// Load it once per process: every client built from it shares one HTTPS connector.
#[derive(Debug, Clone)]
pub struct AwsContext {
    config: aws_config::SdkConfig,
}

impl AwsContext {
    /// Reads the standard AWS environment: `AWS_REGION`, credentials, `AWS_ENDPOINT_URL` (and
    /// `AWS_ENDPOINT_URL_<SERVICE>`).
    pub async fn from_env() -> Self {
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(trust_roots())
            .build_https();
        Self {
            config: aws_config::defaults(BehaviorVersion::latest())
                .http_client(https)
                .timeout_config(timeouts(ATTEMPT_TIMEOUT, CALL_TIMEOUT))
                .load()
                .await,
        }
    }

    /// Other bounds on each try and each call than [`ATTEMPT_TIMEOUT`] and [`CALL_TIMEOUT`].
    pub fn with_timeouts(self, attempt: Duration, call: Duration) -> Self {
        Self {
            config: self
                .config
                .into_builder()
                .timeout_config(timeouts(attempt, call))
                .build(),
        }
    }

    /// The table, without message bodies (what the Lambda functions need).
    pub fn dynamo_store(&self, table: impl Into<String>) -> DynamoStore {
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.config),
            DynamoStoreConfig {
                table: table.into(),
            },
        )
    }

    /// The table, with message bodies in the S3 `bucket` (what the mail listeners need).
    pub fn mail_store(&self, table: impl Into<String>, bucket: impl Into<String>) -> DynamoStore {
        // A custom endpoint (moto, LocalStack) serves buckets by path, not by host name.
        let s3 = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(custom_endpoint())
            .build();
        self.dynamo_store(table)
            .with_bodies(std::sync::Arc::new(S3Bodies {
                client: aws_sdk_s3::Client::from_conf(s3),
                bucket: bucket.into(),
            }))
    }

    pub fn ses_mailer(&self, from: impl Into<String>) -> SesMailer {
        SesMailer::new(self.ses_client(), from.into())
    }

    pub fn ses_client(&self) -> aws_sdk_ses::Client {
        aws_sdk_ses::Client::new(&self.config)
    }

    /// The loaded configuration, for clients of services only one binary uses (the
    /// listeners' SNS and SQS change hints).
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.config
    }
}

/// The roots the SDK's HTTPS client trusts, compiled in: the system's certificate directory is
/// not read, and only the roots needed are parsed, which on Lambda was most of the start-up
/// (docs/benchmarks.md, "Lambda start-up"). AWS's own endpoints all chain to Amazon Trust
/// Services (Amazon Root CA 1–4, cross-signed by Starfield Services Root G2), so on AWS those
/// are the only roots; with a custom endpoint (`AWS_ENDPOINT_URL…`: LocalStack, a proxy) the
/// whole Mozilla set is.
fn trust_roots() -> TlsContext {
    let custom_endpoint = custom_endpoint();
    let mut pem = String::new();
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let der = certificate.as_ref();
        if !custom_endpoint && !is_amazon_trust_services_root(der) {
            continue;
        }
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = STANDARD.encode(der);
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let roots = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem.into_bytes());
    TlsContext::builder()
        .with_trust_store(roots)
        .build()
        .unwrap_or_default()
}

/// Whether AWS calls go to a custom endpoint (`AWS_ENDPOINT_URL…`: LocalStack, moto, a proxy).
fn custom_endpoint() -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .is_some_and(|n| n.starts_with("AWS_ENDPOINT_URL"))
    })
}

/// A self-signed root names itself in its subject (and issuer): these common names are ASCII
/// in the DER, and no other Mozilla root contains them.
fn is_amazon_trust_services_root(der: &[u8]) -> bool {
    const NAMES: [&[u8]; 2] = [
        b"Amazon Root CA ",
        b"Starfield Services Root Certificate Authority - G2",
    ];
    NAMES
        .iter()
        .any(|name| der.windows(name.len()).any(|window| window == *name))
}

fn timeouts(attempt: Duration, call: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(call)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amazon_trust_services_roots_are_found() {
        let found = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|c| is_amazon_trust_services_root(c.as_ref()))
            .count();
        assert_eq!(
            found, 5,
            "Amazon Root CA 1-4 and Starfield Services Root G2"
        );
    }
}
