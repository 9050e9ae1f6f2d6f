//! The DynamoDB backend: one table, keys and items as in docs/data-model.md.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::builders::{DeleteBuilder, PutBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::prelude::*;
use crate::{
    AccountDelete, AccountUpdate, DomainDelete, FailureScope, LinkInsert, LinkQuery, SecretAdd,
    StoreError, StoreResult, TokenDelete, Unlink,
};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Device, Domain,
    DomainName, Link, LinkState, Page, PushSecret, ServerSettings, StoredMail, TokenScope,
    UnlinkRule,
};

type Item = HashMap<String, AttributeValue>;

/// A query's pages, one after another, handed to `take` until it answers `false` or the query
/// is done. (A loop of its own rather than the SDK's paginator: the paginator's stream
/// machinery cost each Lambda bootstrap about 23 KB.)
pub(super) async fn each_page(
    query: QueryFluentBuilder,
    mut take: impl FnMut(QueryOutput) -> StoreResult<bool>,
) -> StoreResult<()> {
    let mut start = None;
    loop {
        let mut output = query
            .clone()
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(backend)?;
        start = output.last_evaluated_key.take();
        if !take(output)? || start.is_none() {
            return Ok(());
        }
    }
}

/// The items a query finds, page after page, handed to `take` until it answers `false` or the
/// query is done.
pub(super) async fn each_item(
    query: QueryFluentBuilder,
    mut take: impl FnMut(Item) -> StoreResult<bool>,
) -> StoreResult<()> {
    each_page(query, |page| {
        for item in page.items.unwrap_or_default() {
            if !take(item)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
}

mod codec;
use codec::*;

/// How many times an atomic operation is retried when a concurrent writer changed the item
/// between its conditional write and the read that explains the refusal.
const RACE_RETRIES: usize = 8;
const OUTBOX_ACTIVATION: &str = "OUTBOX#activation";
/// Heartbeat items outlive their use by a day, then TTL removes them.
const HEARTBEAT_KEEP_SECS: i64 = 86_400;

/// How one try of a contended operation ended.
enum Attempt<T> {
    Done(T),
    /// A concurrent writer changed the item between the refused write and the read that
    /// explains the refusal: try again.
    Raced,
}

/// Runs `attempt` until it is done, at most [`RACE_RETRIES`] times; `what` names the item
/// fought over, for the error.
async fn contended<T, Fut>(what: &str, mut attempt: impl FnMut() -> Fut) -> StoreResult<T>
where
    Fut: std::future::Future<Output = StoreResult<Attempt<T>>>,
{
    for _ in 0..RACE_RETRIES {
        if let Attempt::Done(value) = attempt().await? {
            return Ok(value);
        }
    }
    Err(StoreError::Backend(format!(
        "too much contention on {what}"
    )))
}

/// One write of a transaction, from its builder.
fn put_write(put: PutBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .put(build(put.build())?)
        .build())
}

fn update_write(update: UpdateBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(build(update.build())?)
        .build())
}

fn delete_write(delete: DeleteBuilder) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .delete(build(delete.build())?)
        .build())
}

#[derive(Debug, Clone)]
pub struct DynamoStoreConfig {
    pub table: String,
}

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

/// [`Store`] on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    bodies: Option<Arc<dyn BodyStore>>,
    /// Deliveries to one account from this process take turns (striped by account), so they
    /// do not spend their conditional writes on each other; other processes still race, and
    /// the conditions decide.
    delivery_turns: Arc<[tokio::sync::Mutex<()>; DELIVERY_STRIPES]>,
}

const DELIVERY_STRIPES: usize = 64;

impl DynamoStore {
    pub fn new(client: Client, config: DynamoStoreConfig) -> Self {
        Self {
            client,
            table: config.table,
            bodies: None,
            delivery_turns: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
        }
    }

    /// The store with message bodies kept in `bodies` (needed for [`crate::MailboxStore`]).
    pub fn with_bodies(mut self, bodies: Arc<dyn BodyStore>) -> Self {
        self.bodies = Some(bodies);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Commits `writes` as one transaction: true if it committed, false if one of its
    /// conditions (or a conflicting concurrent write) cancelled it.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> StoreResult<bool> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_cancelled(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.item)
    }

    async fn put(&self, item: Item) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// A query of one partition, only its sort keys that start with `prefix` if given: the key
    /// condition written once.
    pub(super) fn partition_query(&self, pk: &str, prefix: Option<&str>) -> QueryFluentBuilder {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(pk));
        match prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("pk = :pk"),
        }
    }

    /// All items of a partition (whose sort key starts with `prefix`, if given), in key order.
    async fn query_partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        newest_first: bool,
    ) -> StoreResult<Vec<Item>> {
        let query = self
            .partition_query(&pk, prefix)
            .scan_index_forward(!newest_first)
            .consistent_read(true);
        let mut items = Vec::new();
        each_item(query, |item| {
            items.push(item);
            Ok(true)
        })
        .await?;
        Ok(items)
    }
}

/// One listing: a partition of the table or of an index, read forwards or backwards.
struct Listing {
    index: Option<&'static str>,
    partition: String,
    /// Only sort keys that begin with this (table listings only).
    sort_prefix: Option<&'static str>,
    forward: bool,
    filter: Option<(&'static str, AttributeValue)>,
}

impl Listing {
    fn table(partition: String, forward: bool) -> Self {
        Self {
            index: None,
            partition,
            sort_prefix: None,
            forward,
            filter: None,
        }
    }

    /// A partition's items whose sort key starts with `prefix`, highest key first.
    fn table_prefix(partition: String, prefix: &'static str) -> Self {
        Self {
            sort_prefix: Some(prefix),
            ..Self::table(partition, false)
        }
    }

    fn index(index: &'static str, partition: String, forward: bool) -> Self {
        Self {
            index: Some(index),
            partition,
            sort_prefix: None,
            forward,
            filter: None,
        }
    }

    /// The attributes that make up a position in this listing.
    fn key_attributes(&self) -> Vec<String> {
        let mut keys = vec!["pk".to_owned(), "sk".to_owned()];
        if let Some(index) = self.index {
            keys.push(format!("{index}pk"));
            keys.push(format!("{index}sk"));
        }
        keys
    }

    fn partition_attribute(&self) -> String {
        self.index
            .map_or_else(|| "pk".to_owned(), |index| format!("{index}pk"))
    }
}

struct ItemPage {
    items: Vec<Item>,
    cursor: Option<String>,
}

fn encode_cursor(item: &Item, listing: &Listing) -> StoreResult<String> {
    let mut position = serde_json::Map::new();
    for key in listing.key_attributes() {
        position.insert(
            key.clone(),
            serde_json::Value::String(get_s(item, &key)?.to_owned()),
        );
    }
    Ok(URL_SAFE_NO_PAD.encode(serde_json::Value::Object(position).to_string()))
}

fn decode_cursor(cursor: &str, listing: &Listing) -> StoreResult<Item> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let position: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    let keys = listing.key_attributes();
    // A cursor only resumes the listing that produced it: same keys, same partition.
    if position.len() != keys.len()
        || !keys.iter().all(|k| position.contains_key(k))
        || position.get(&listing.partition_attribute()) != Some(&listing.partition)
    {
        return Err(StoreError::BadCursor);
    }
    Ok(position.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl DynamoStore {
    async fn write_domain(&self, domain: &Domain, condition: Option<&str>) -> StoreResult<bool> {
        let update = field_update(domain_fields(domain));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(domain_pk(&domain.name)))
            .key("sk", s("DOMAIN"))
            .update_expression(update.expression)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .set_condition_expression(condition.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    /// Every item of an index partition, in index order.
    async fn query_partition_of(
        &self,
        index: &'static str,
        partition: &str,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let listing = Listing::index(index, partition.to_owned(), true);
            let page = self.page(listing, cursor.as_deref(), 100).await?;
            items.extend(page.items);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Puts `item` if `condition` holds (with `values` for its placeholders); false if not.
    async fn put_if(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<bool> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    /// Up to `limit` items of a listing after `cursor`, and the cursor of the next page only if
    /// there is one: one item more than asked for is read to know.
    async fn page(
        &self,
        listing: Listing,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<ItemPage> {
        let limit = limit.max(1);
        let mut start = cursor.map(|c| decode_cursor(c, &listing)).transpose()?;
        let partition_attribute = listing.partition_attribute();
        let mut items: Vec<Item> = Vec::new();
        loop {
            let wanted = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(listing.index.map(str::to_owned))
                .expression_attribute_names("#partition", &partition_attribute)
                .expression_attribute_values(":partition", s(&listing.partition))
                .scan_index_forward(listing.forward)
                .limit(wanted)
                .set_exclusive_start_key(start.take());
            query = match listing.sort_prefix {
                Some(prefix) => query
                    .key_condition_expression(
                        "#partition = :partition AND begins_with(sk, :prefix)",
                    )
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("#partition = :partition"),
            };
            if let Some((filter, value)) = &listing.filter {
                query = query
                    .filter_expression(*filter)
                    .expression_attribute_values(":activation", value.clone());
            }
            let output = query.send().await.map_err(backend)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if items.len() > limit || start.is_none() {
                break;
            }
        }
        let cursor = if items.len() > limit {
            items.truncate(limit);
            Some(encode_cursor(&items[limit - 1], &listing)?)
        } else {
            None
        };
        Ok(ItemPage { items, cursor })
    }
}

/// A conditional write (or a condition check) refused: the expected, explainable outcome.
fn condition_failed<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

/// A transaction refused, by one of its conditions or by a conflicting concurrent write.
fn is_cancelled<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.code() == Some("TransactionCanceledException")
}

fn token_from(item: &Item) -> StoreResult<AdminToken> {
    let scope = match get_s(item, "scope")? {
        "server" => TokenScope::Server,
        "domain" => TokenScope::Domain(get_parsed(item, "scope_domain", DomainName::parse)?),
        _ => return Err(corrupt(item, "scope")),
    };
    Ok(AdminToken {
        id: get_s(item, "id")?.to_owned(),
        secret_hash: get_s(item, "secret_hash")?.to_owned(),
        scope,
        label: get_s(item, "label")?.to_owned(),
        created_at: get_time(item, "created_at")?,
    })
}

fn audit_pk(domain: Option<&DomainName>) -> String {
    match domain {
        Some(domain) => format!("AUDIT#{domain}"),
        None => "AUDIT#SERVER".to_owned(),
    }
}

// --- keys ------------------------------------------------------------------------------------

fn domain_pk(name: &DomainName) -> String {
    format!("DOMAIN#{name}")
}

fn account_pk(address: &Address) -> String {
    format!("ACCOUNT#{address}")
}

fn outbox_sk(subscription_id: &str) -> String {
    format!("SUB#{subscription_id}")
}

fn rate_pk(scope: &FailureScope<'_>, window_start: DateTime<Utc>) -> String {
    format!("RATE#{}#{}", scope.key(), window_start.timestamp())
}

mod accounts;
mod admin;
mod deliver;
mod domains;
mod expunge;
mod flags;
mod guards;
mod kept_mail;
mod links;
mod liveness;
mod mailbox;
mod notices;
mod outbox;
mod purge;
mod relay;
