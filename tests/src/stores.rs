//! The harness's stores: the embedded one in a temporary folder, or a fresh DynamoDB table (and
//! S3 bucket for message bodies) on the AWS endpoint, created as infra/table.json defines it.

use std::sync::Arc;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use pushmail_runtime::aws::AwsContext;
use pushmail_store::{ChangeWindow, EmbeddedStore, Store};
use serde_json::Value;

/// A store for one test, and what keeps it alive (the embedded store's temporary folder, removed
/// when the test ends).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    /// The DynamoDB table, on DynamoDB.
    pub table: Option<String>,
    /// The S3 bucket of its message bodies, on DynamoDB.
    pub bucket: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// Another store on the same DynamoDB table and bucket, as a second process (or the next
    /// version) opens it: nothing it learnt in this process carried over.
    pub async fn another_process(&self) -> Option<Arc<dyn Store>> {
        let (table, bucket) = (self.table.clone()?, self.bucket.clone()?);
        let store = AwsContext::from_env().await.mail_store(table, bucket);
        Some(Arc::new(store))
    }

    /// The embedded store's file, on the embedded store.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self._dir.as_ref().map(|dir| dir.path().join(EMBEDDED_FILE))
    }
}

const EMBEDDED_FILE: &str = "pushmail.redb";

/// True when the tests run on DynamoDB (see the module's header).
pub fn on_dynamodb() -> bool {
    match std::env::var("PUSHMAIL_TEST_STORE").as_deref() {
        Ok("dynamodb") => true,
        Ok("embedded") => false,
        Ok(other) => panic!("PUSHMAIL_TEST_STORE must be embedded or dynamodb, not {other}"),
        Err(_) => std::env::var_os("AWS_ENDPOINT_URL").is_some(),
    }
}

/// A fresh store on the backend [`on_dynamodb`] chooses.
pub async fn test_store() -> TestStore {
    test_store_with(ChangeWindow::DEFAULT).await
}

/// [`test_store`] keeping `window` of each account's change log.
pub async fn test_store_with(window: ChangeWindow) -> TestStore {
    if on_dynamodb() {
        dynamo_store_with(window).await
    } else {
        embedded_store_with(window)
    }
}

/// Runs each test function on both backends: `on_both_backends!(setup; test, …)` calls
/// `test(setup(store).await)` with a fresh DynamoDB table and then a fresh embedded store;
/// `on_both_backends!(setup, keeping window; test, …)` with stores keeping that change window.
/// Without an AWS endpoint when the suites are built (moto in the test command) the DynamoDB half is
/// marked ignored (`tests/build.rs`): a plain `cargo test` runs the embedded half and reports the
/// other as not run.
#[macro_export]
macro_rules! on_both_backends {
    ($setup:ident; $($test:ident),* $(,)?) => {
        $crate::on_both_backends!(
            $setup, keeping ::pushmail_store::ChangeWindow::DEFAULT; $($test),*
        );
    };
    // With stores keeping `$window` of each account's change log (an expression read in the
    // calling module).
    ($setup:ident, keeping $window:expr; $($test:ident),* $(,)?) => {
        mod on_dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            #[cfg_attr(
                no_aws_endpoint,
                ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
            )]
            async fn $test() {
                #[allow(unused_imports)]
                use super::*;
                let store = $crate::dynamo_store_with($window).await;
                super::$test(super::$setup(store.store.clone()).await).await
            })*
        }
        mod on_embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                #[allow(unused_imports)]
                use super::*;
                let store = $crate::embedded_store_with($window);
                super::$test(super::$setup(store.store.clone()).await).await
            })*
        }
    };
}

/// A fresh embedded store in a temporary folder.
pub fn embedded_store() -> TestStore {
    embedded_store_with(ChangeWindow::DEFAULT)
}

/// [`embedded_store`] keeping `window` of each account's change log.
pub fn embedded_store_with(window: ChangeWindow) -> TestStore {
    let dir = tempfile::Builder::new()
        .prefix("pushmail-test-")
        .tempdir()
        .expect("temporary folder");
    let store = EmbeddedStore::open(&dir.path().join(EMBEDDED_FILE))
        .expect("embedded store")
        .with_change_window(window);
    TestStore {
        store: Arc::new(store),
        table: None,
        bucket: None,
        _dir: Some(dir),
    }
}

/// A fresh table on the AWS endpoint, created as infra/table.json defines it.
pub async fn dynamo_store() -> TestStore {
    dynamo_store_with(ChangeWindow::DEFAULT).await
}

/// [`dynamo_store`] keeping `window` of each account's change log.
pub async fn dynamo_store_with(window: ChangeWindow) -> TestStore {
    endpoint();
    let table = unique("pushmail-test-");
    create_table(&table).await;
    let bucket = unique("pushmail-test-");
    create_bucket(&bucket).await;
    TestStore {
        store: Arc::new(
            AwsContext::from_env()
                .await
                .mail_store(table.clone(), bucket.clone())
                .with_change_window(window),
        ),
        table: Some(table),
        bucket: Some(bucket),
        _dir: None,
    }
}

pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

pub(crate) fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: run the DynamoDB tests with infra/local/test.sh, which starts moto"
        )
    })
}

/// AWS settings for the harness's own clients, on the same TLS stack as pushmail's.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await
}

/// An S3 client on the AWS endpoint, path-style (as moto and LocalStack serve buckets).
pub async fn s3_client() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates an S3 bucket for message bodies.
pub async fn create_bucket(name: &str) {
    s3_client()
        .await
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

/// Creates a table exactly as infra/table.json defines it.
pub async fn create_table(name: &str) {
    let definition: Value = serde_json::from_str(include_str!("../../infra/table.json"))
        .expect("infra/table.json is JSON");
    let sdk = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let key_schema = |keys: &Value| -> Vec<KeySchemaElement> {
        keys.as_array()
            .expect("key schema")
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().expect("name"))
                    .key_type(KeyType::from(k["KeyType"].as_str().expect("type")))
                    .build()
                    .expect("key schema element")
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::from(
            definition["BillingMode"].as_str().expect("billing"),
        ))
        .set_key_schema(Some(key_schema(&definition["KeySchema"])));
    for attribute in definition["AttributeDefinitions"]
        .as_array()
        .expect("attributes")
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute["AttributeName"].as_str().expect("name"))
                .attribute_type(ScalarAttributeType::from(
                    attribute["AttributeType"].as_str().expect("type"),
                ))
                .build()
                .expect("attribute definition"),
        );
    }
    for index in definition["GlobalSecondaryIndexes"]
        .as_array()
        .expect("indexes")
    {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index["IndexName"].as_str().expect("index name"))
                .set_key_schema(Some(key_schema(&index["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            index["Projection"]["ProjectionType"]
                                .as_str()
                                .expect("projection"),
                        ))
                        .build(),
                )
                .build()
                .expect("index"),
        );
    }
    request.send().await.expect("create table");
}
