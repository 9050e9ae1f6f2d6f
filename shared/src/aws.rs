//! The one place that loads AWS configuration; nothing past the store and mailer sees AWS types.

use aws_config::BehaviorVersion;

use crate::mailer::SesMailer;
use crate::store::{DynamoStore, DynamoStoreConfig};

/// Loaded AWS settings (region, credentials, and `AWS_ENDPOINT_URL` for LocalStack or moto).
#[derive(Debug, Clone)]
pub struct AwsContext {
    config: aws_config::SdkConfig,
}

impl AwsContext {
    /// Reads the standard AWS environment: `AWS_REGION`, credentials, `AWS_ENDPOINT_URL`.
    pub async fn from_env() -> Self {
        Self {
            config: aws_config::load_defaults(BehaviorVersion::latest()).await,
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
