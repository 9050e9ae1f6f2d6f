//! Message bodies outside the table: the store trait, and S3's.

use super::*;

/// Where the DynamoDB backend keeps message bodies (metadata stays in the table): S3 on AWS
/// ([`S3Bodies`]). A trait, so that a process that handles no mail (the Lambda functions) does
/// not link an S3 client at all.
#[async_trait]
pub trait BodyStore: Send + Sync + std::fmt::Debug {
    async fn put_body(&self, key: &str, raw: &[u8]) -> StoreResult<()>;
    async fn body(&self, key: &str) -> StoreResult<Vec<u8>>;
    async fn delete_body(&self, key: &str) -> StoreResult<()>;
}

/// Message bodies in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Bodies {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

fn s3_error<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Backend(aws_sdk_s3::error::DisplayErrorContext(error).to_string())
}

#[async_trait]
impl BodyStore for S3Bodies {
    async fn put_body(&self, key: &str, raw: &[u8]) -> StoreResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("message/rfc822")
            .body(aws_sdk_s3::primitives::ByteStream::from(raw.to_vec()))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    async fn body(&self, key: &str) -> StoreResult<Vec<u8>> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_error)?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend(format!("reading a message body: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    async fn delete_body(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }
}
