//! The one place that loads AWS configuration; nothing past the store and mailer sees AWS types.

use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use pushmail_push::mailer::SesMailer;
use pushmail_store::{DynamoStore, DynamoStoreConfig};

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
            .build_https();
        Self {
            config: aws_config::defaults(BehaviorVersion::latest())
                .http_client(https)
                .load()
                .await,
        }
    }

    pub fn dynamo_store(&self, table: impl Into<String>) -> DynamoStore {
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.config),
            DynamoStoreConfig {
                table: table.into(),
            },
        )
    }

    pub fn ses_mailer(&self, from: impl Into<String>) -> SesMailer {
        SesMailer::new(aws_sdk_ses::Client::new(&self.config), from.into())
    }
}
