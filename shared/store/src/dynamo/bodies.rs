//! Message bodies outside the table: the store trait, and S3's.

use super::*;

/// Where the DynamoDB backend keeps message bodies (metadata stays in the table): S3 on AWS
/// ([`S3Bodies`]). A trait, so that a process that handles no mail (the Lambda functions) does
/// not link an S3 client at all.
#[async_trait]
pub trait BodyStore: Send + Sync + std::fmt::Debug {
    async fn put_body(&self, key: &str, raw: &[u8]) -> StoreResult<()>;
    async fn body(&self, key: &str) -> StoreResult<Vec<u8>>;
    /// The body's header, up to its blank line ([`pushmail_core::message::header_end`]).
    async fn header(&self, key: &str) -> StoreResult<Vec<u8>> {
        let mut raw = self.body(key).await?;
        raw.truncate(pushmail_core::message::header_end(&raw));
        Ok(raw)
    }
    async fn delete_body(&self, key: &str) -> StoreResult<()>;
    /// Deletes these bodies (gone already is fine).
    async fn delete_bodies(&self, keys: &[String]) -> StoreResult<()> {
        for key in keys {
            self.delete_body(key).await?;
        }
        Ok(())
    }
}

/// DeleteObjects' own limit.
const DELETES_PER_REQUEST: usize = 1000;

/// Message bodies in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Bodies {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
}

impl S3Bodies {
    /// The object under `key`, its bytes still to be read off its stream.
    async fn object(
        &self,
        key: &str,
    ) -> StoreResult<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_error)
    }
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
        let bytes = self
            .object(key)
            .await?
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Backend(format!("reading a message body: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Read off the object's stream until the blank line, the rest left unread: a client's
    /// listing of header sections or ENVELOPEs does not fetch every attachment from S3.
    async fn header(&self, key: &str) -> StoreResult<Vec<u8>> {
        let mut object = self.object(key).await?;
        let mut header = pushmail_core::message::HeaderReader::default();
        while let Some(chunk) = object
            .body
            .try_next()
            .await
            .map_err(|e| StoreError::Backend(format!("reading a message header: {e}")))?
        {
            if header.push(&chunk) {
                break;
            }
        }
        Ok(header.into_header())
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

    /// A thousand a request (one request a body before: a large mailbox's purge ran out of
    /// time and, starting again from its first body, never finished).
    async fn delete_bodies(&self, keys: &[String]) -> StoreResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        for chunk in keys.chunks(DELETES_PER_REQUEST) {
            let objects = chunk
                .iter()
                .map(|key| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(s3_error)
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(s3_error)?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(s3_error)?;
            let errors = output.errors.unwrap_or_default();
            if let Some(error) = errors.first() {
                return Err(StoreError::Backend(format!(
                    "deleting message bodies: {} of {} failed, the first {:?}: {}",
                    errors.len(),
                    chunk.len(),
                    error.key.as_deref().unwrap_or_default(),
                    error.message.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}
