//! The DynamoDB backend: one table, keys and items as in docs/data-model.md.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, Select, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{
    AccountDelete, DomainDelete, FailureScope, LinkInsert, LinkQuery, SecretAdd, Store, StoreError,
    StoreResult, Unlink,
};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Device, Domain,
    DomainName, Link, LinkState, Page, PushSecret, ServerSettings, StoredMail, TokenScope,
};

type Item = HashMap<String, AttributeValue>;

/// How many times an atomic operation is retried when a concurrent writer changed the item
/// between its conditional write and the read that explains the refusal.
const RACE_RETRIES: usize = 8;
const OUTBOX_ACTIVATION: &str = "OUTBOX#activation";
/// Heartbeat items outlive their use by a day, then TTL removes them.
const HEARTBEAT_KEEP_SECS: i64 = 86_400;

#[derive(Debug, Clone)]
pub struct DynamoStoreConfig {
    pub table: String,
}

/// [`Store`] on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, config: DynamoStoreConfig) -> Self {
        Self {
            client,
            table: config.table,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
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

    /// All items of a partition (whose sort key starts with `prefix`, if given), in key order.
    async fn query_partition(
        &self,
        pk: String,
        prefix: Option<&str>,
        newest_first: bool,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()));
            let query = match prefix {
                Some(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let output = query
                .scan_index_forward(!newest_first)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
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

// --- attribute helpers -----------------------------------------------------------------------

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn time(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    // The service's own code and message; the whole error context only when there is none.
    let detail = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
    };
    StoreError::Backend(detail)
}

fn corrupt(item: &Item, field: &str) -> StoreError {
    let key = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    StoreError::Corrupt(format!(
        "item {key}: attribute `{field}` is missing or ill-typed"
    ))
}

fn get_s<'a>(item: &'a Item, field: &str) -> StoreResult<&'a str> {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, field))
}

fn get_opt_s(item: &Item, field: &str) -> Option<String> {
    item.get(field).and_then(|v| v.as_s().ok()).cloned()
}

fn get_bool(item: &Item, field: &str) -> StoreResult<bool> {
    item.get(field)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| corrupt(item, field))
}

fn get_n<T: std::str::FromStr>(item: &Item, field: &str) -> StoreResult<T> {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(item, field))
}

fn get_time(item: &Item, field: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(get_s(item, field)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(item, field))
}

fn get_millis(item: &Item, field: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(get_n(item, field)?).ok_or_else(|| corrupt(item, field))
}

fn get_parsed<T>(
    item: &Item,
    field: &str,
    parse: impl Fn(&str) -> Result<T, pushmail_core::types::InvalidName>,
) -> StoreResult<T> {
    parse(get_s(item, field)?).map_err(|_| corrupt(item, field))
}

fn put_device(item: &mut Item, device: &Option<Device>) {
    if let Some(device) = device {
        if let Some(pin) = &device.pin {
            item.insert("device_pin".into(), s(pin));
        }
        if let Some(model) = &device.model {
            item.insert("device_model".into(), s(model));
        }
    }
}

fn get_device(item: &Item) -> Option<Device> {
    let device = Device {
        pin: get_opt_s(item, "device_pin"),
        model: get_opt_s(item, "device_model"),
    };
    (device != Device::default()).then_some(device)
}

// --- item mapping ----------------------------------------------------------------------------

/// A domain's settings as attributes; `None` fields are removed by an update.
fn domain_fields(domain: &Domain) -> Vec<(&'static str, Option<AttributeValue>)> {
    vec![
        ("gsi1pk", Some(s("DOMAINS"))),
        ("gsi1sk", Some(s(domain.name.as_str()))),
        ("name", Some(s(domain.name.as_str()))),
        (
            "push_enabled",
            Some(AttributeValue::Bool(domain.push_enabled)),
        ),
        ("subscribe_url", domain.subscribe_url.as_deref().map(s)),
        ("smtp_server", domain.smtp_server.as_deref().map(s)),
        ("sent_items_alias", Some(s(&domain.sent_items_alias))),
        ("deleted_items_alias", Some(s(&domain.deleted_items_alias))),
        ("dkim_selector", domain.dkim_selector.as_deref().map(s)),
        ("dkim_key_ref", domain.dkim_key_ref.as_deref().map(s)),
        ("created_at", Some(time(domain.created_at))),
    ]
}

fn domain_from(item: &Item) -> StoreResult<Domain> {
    Ok(Domain {
        name: get_parsed(item, "name", DomainName::parse)?,
        push_enabled: get_bool(item, "push_enabled")?,
        subscribe_url: get_opt_s(item, "subscribe_url"),
        smtp_server: get_opt_s(item, "smtp_server"),
        sent_items_alias: get_s(item, "sent_items_alias")?.to_owned(),
        deleted_items_alias: get_s(item, "deleted_items_alias")?.to_owned(),
        dkim_selector: get_opt_s(item, "dkim_selector"),
        dkim_key_ref: get_opt_s(item, "dkim_key_ref"),
        created_at: get_time(item, "created_at")?,
    })
}

/// `SET`s the present fields and `REMOVE`s the absent ones, leaving other attributes alone.
struct FieldUpdate {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn field_update(fields: Vec<(&'static str, Option<AttributeValue>)>) -> FieldUpdate {
    let (mut set, mut remove) = (Vec::new(), Vec::new());
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    for (index, (field, value)) in fields.into_iter().enumerate() {
        let name = format!("#f{index}");
        names.insert(name.clone(), field.to_owned());
        match value {
            Some(value) => {
                set.push(format!("{name} = :f{index}"));
                values.insert(format!(":f{index}"), value);
            }
            None => remove.push(name),
        }
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    FieldUpdate {
        expression,
        names,
        values,
    }
}

fn account_item(account: &Account) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(account_pk(&account.address))),
        ("sk".into(), s("ACCOUNT")),
        (
            "gsi1pk".into(),
            s(format!("ACCOUNTS#{}", account.address.domain())),
        ),
        ("gsi1sk".into(), s(account.address.as_str())),
        ("address".into(), s(account.address.as_str())),
        ("password_hash".into(), s(&account.password_hash)),
        ("enabled".into(), AttributeValue::Bool(account.enabled)),
        (
            "pushed_folders".into(),
            AttributeValue::L(account.pushed_folders.iter().map(s).collect()),
        ),
        ("created_at".into(), time(account.created_at)),
    ]);
    if let Some(name) = &account.display_name {
        item.insert("display_name".into(), s(name));
    }
    item
}

fn account_from(item: &Item) -> StoreResult<Account> {
    Ok(Account {
        address: get_parsed(item, "address", Address::parse)?,
        password_hash: get_s(item, "password_hash")?.to_owned(),
        enabled: get_bool(item, "enabled")?,
        display_name: get_opt_s(item, "display_name"),
        pushed_folders: match item.get("pushed_folders") {
            None => Vec::new(),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| corrupt(item, "pushed_folders"))
                })
                .collect::<StoreResult<_>>()?,
            Some(_) => return Err(corrupt(item, "pushed_folders")),
        },
        created_at: get_time(item, "created_at")?,
    })
}

/// The sort key of the integrated-accounts indexes: newest first when read backwards.
fn link_index_sk(link: &Link) -> String {
    format!(
        "{}#{}",
        link.linked_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        link.address
    )
}

fn link_item(link: &Link) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(account_pk(&link.address))),
        ("sk".into(), s("LINK")),
        ("address".into(), s(link.address.as_str())),
        ("subscription_id".into(), s(&link.subscription_id)),
        ("registration".into(), s(&link.registration)),
        ("generation".into(), n(link.generation)),
        ("callback".into(), s(&link.callback)),
        ("state".into(), s(link_state_str(link.state))),
        ("activation".into(), s(link.activation.as_str())),
        ("linked_at".into(), time(link.linked_at)),
    ]);
    put_device(&mut item, &link.device);
    if let Some(at) = link.unlinked_at {
        item.insert("unlinked_at".into(), time(at));
    }
    if link.is_linked() {
        // Sparse indexes: only live links are listed as integrated accounts.
        let sort = link_index_sk(link);
        item.insert(
            "gsi1pk".into(),
            s(format!("LINKS#{}", link.address.domain())),
        );
        item.insert("gsi1sk".into(), s(sort.clone()));
        item.insert("gsi2pk".into(), s("LINKS"));
        item.insert("gsi2sk".into(), s(sort));
    }
    item
}

fn link_state_str(state: LinkState) -> &'static str {
    match state {
        LinkState::Linked => "linked",
        LinkState::Unlinked => "unlinked",
    }
}

fn link_from(item: &Item) -> StoreResult<Link> {
    let state = match get_s(item, "state")? {
        "linked" => LinkState::Linked,
        "unlinked" => LinkState::Unlinked,
        _ => return Err(corrupt(item, "state")),
    };
    let activation = match get_s(item, "activation")? {
        "pending" => ActivationState::Pending,
        "sent" => ActivationState::Sent,
        _ => return Err(corrupt(item, "activation")),
    };
    Ok(Link {
        address: get_parsed(item, "address", Address::parse)?,
        subscription_id: get_s(item, "subscription_id")?.to_owned(),
        registration: get_s(item, "registration")?.to_owned(),
        generation: get_n(item, "generation")?,
        callback: get_s(item, "callback")?.to_owned(),
        device: get_device(item),
        state,
        activation,
        linked_at: get_time(item, "linked_at")?,
        unlinked_at: item
            .get("unlinked_at")
            .map(|_| get_time(item, "unlinked_at"))
            .transpose()?,
    })
}

fn activation_item(job: &ActivationJob) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(OUTBOX_ACTIVATION)),
        ("sk".into(), s(outbox_sk(&job.subscription_id))),
        ("subscription_id".into(), s(&job.subscription_id)),
        ("address".into(), s(job.address.as_str())),
        ("linked_at".into(), time(job.linked_at)),
        ("attempts".into(), n(job.attempts)),
        ("not_before".into(), n(job.not_before.timestamp_millis())),
    ]);
    put_device(&mut item, &job.device);
    item
}

fn activation_from(item: &Item) -> StoreResult<ActivationJob> {
    Ok(ActivationJob {
        subscription_id: get_s(item, "subscription_id")?.to_owned(),
        address: get_parsed(item, "address", Address::parse)?,
        device: get_device(item),
        linked_at: get_time(item, "linked_at")?,
        attempts: get_n(item, "attempts")?,
        not_before: get_millis(item, "not_before")?,
    })
}

fn outbox_key(subscription_id: &str) -> [(String, AttributeValue); 2] {
    [
        ("pk".into(), s(OUTBOX_ACTIVATION)),
        ("sk".into(), s(outbox_sk(subscription_id))),
    ]
}

fn build<T, E: std::fmt::Display>(built: Result<T, E>) -> StoreResult<T> {
    built.map_err(|e| StoreError::Backend(format!("request could not be built: {e}")))
}

#[async_trait]
impl Store for DynamoStore {
    async fn server_settings(&self) -> StoreResult<ServerSettings> {
        match self.get("SERVER".into(), "SETTINGS").await? {
            Some(item) => Ok(ServerSettings {
                push_enabled: get_bool(&item, "push_enabled")?,
            }),
            None => Ok(ServerSettings::default()),
        }
    }

    async fn put_server_settings(&self, settings: &ServerSettings) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s("SERVER")),
            ("sk".into(), s("SETTINGS")),
            (
                "push_enabled".into(),
                AttributeValue::Bool(settings.push_enabled),
            ),
        ]))
        .await
    }

    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>> {
        self.get(domain_pk(name), "DOMAIN")
            .await?
            .as_ref()
            .map(domain_from)
            .transpose()
    }

    async fn put_domain(&self, domain: &Domain) -> StoreResult<()> {
        self.write_domain(domain, None).await.map(|_| ())
    }

    async fn create_domain(&self, domain: &Domain) -> StoreResult<bool> {
        self.write_domain(domain, Some("attribute_not_exists(pk)"))
            .await
    }

    async fn update_domain(&self, domain: &Domain) -> StoreResult<bool> {
        self.write_domain(domain, Some("attribute_exists(pk)"))
            .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.query_partition_of("gsi1", "DOMAINS")
            .await?
            .iter()
            .map(domain_from)
            .collect()
    }

    async fn delete_domain(&self, name: &DomainName) -> StoreResult<DomainDelete> {
        let accounts = self
            .page(
                Listing::index("gsi1", format!("ACCOUNTS#{name}"), true),
                None,
                1,
            )
            .await?;
        if !accounts.items.is_empty() {
            return Ok(DomainDelete::HasAccounts);
        }
        let mut request = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .delete(build(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(domain_pk(name)))
                        .key("sk", s("DOMAIN"))
                        .condition_expression("attribute_exists(pk)")
                        .build(),
                )?)
                .build(),
        );
        for secret in self
            .query_partition(domain_pk(name), Some("SECRET#"), false)
            .await?
        {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .key("pk", s(domain_pk(name)))
                            .key("sk", s(get_s(&secret, "sk")?))
                            .build(),
                    )?)
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(DomainDelete::Deleted),
            Err(error) if is_cancelled(&error) => Ok(DomainDelete::NotFound),
            Err(error) => Err(backend(error)),
        }
    }

    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>> {
        self.query_partition(domain_pk(domain), Some("SECRET#"), true)
            .await?
            .iter()
            .map(|item| {
                Ok(PushSecret {
                    id: get_s(item, "id")?.to_owned(),
                    value: get_s(item, "value")?.to_owned(),
                    created_at: get_time(item, "created_at")?,
                })
            })
            .collect()
    }

    async fn add_push_secret(
        &self,
        domain: &DomainName,
        secret: &PushSecret,
        max_live: u32,
    ) -> StoreResult<SecretAdd> {
        let created = secret
            .created_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        // The domain item counts live secrets, so the limit holds under concurrent adds.
        let count = build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s("DOMAIN"))
                .update_expression("SET secret_count = if_not_exists(secret_count, :zero) + :one")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(secret_count) OR secret_count < :max)",
                )
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_live))
                .build(),
        )?;
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .item("pk", s(domain_pk(domain)))
                .item("sk", s(format!("SECRET#{created}#{}", secret.id)))
                .item("id", s(&secret.id))
                .item("value", s(&secret.value))
                .item("created_at", s(created))
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(count).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(SecretAdd::Added),
            Err(error) if is_cancelled(&error) => match self.domain(domain).await? {
                None => Ok(SecretAdd::NoSuchDomain),
                Some(_) => Ok(SecretAdd::TooMany),
            },
            Err(error) => Err(backend(error)),
        }
    }

    async fn retire_push_secret(&self, domain: &DomainName, id: &str) -> StoreResult<bool> {
        let secrets = self
            .query_partition(domain_pk(domain), Some("SECRET#"), false)
            .await?;
        let Some(secret) = secrets.iter().find(|item| {
            item.get("id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|v| v == id)
        }) else {
            return Ok(false);
        };
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s(get_s(secret, "sk")?))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let uncount = build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s("DOMAIN"))
                .update_expression("SET secret_count = secret_count - :one")
                .condition_expression("secret_count > :zero")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(uncount).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_cancelled(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        self.get(account_pk(address), "ACCOUNT")
            .await?
            .as_ref()
            .map(account_from)
            .transpose()
    }

    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        self.put(account_item(account)).await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        self.put_if(account_item(account), "attribute_not_exists(pk)", vec![])
            .await
    }

    async fn update_account(&self, account: &Account) -> StoreResult<bool> {
        self.put_if(account_item(account), "attribute_exists(pk)", vec![])
            .await
    }

    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete> {
        for _ in 0..RACE_RETRIES {
            let link = self.link(address).await?;
            let delete_account = build(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(account_pk(address)))
                    .key("sk", s("ACCOUNT"))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?;
            // The link must still be as read, so the returned link is the one deleted.
            let mut delete_link = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(account_pk(address)))
                .key("sk", s("LINK"));
            delete_link = match &link {
                Some(link) => delete_link
                    .condition_expression("subscription_id = :id AND #state = :state")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":id", s(&link.subscription_id))
                    .expression_attribute_values(":state", s(link_state_str(link.state))),
                None => delete_link.condition_expression("attribute_not_exists(pk)"),
            };
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(delete_account).build())
                .transact_items(
                    TransactWriteItem::builder()
                        .delete(build(delete_link.build())?)
                        .build(),
                )
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(AccountDelete::Deleted {
                        live_link: link.filter(Link::is_linked),
                    });
                }
                Err(error) if is_cancelled(&error) => {
                    if self.account(address).await?.is_none() {
                        return Ok(AccountDelete::NotFound);
                    }
                }
                Err(error) => return Err(backend(error)),
            }
        }
        Err(StoreError::Backend(
            "too much contention on one account".into(),
        ))
    }

    async fn list_accounts(
        &self,
        domain: &DomainName,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>> {
        let page = self
            .page(
                Listing::index("gsi1", format!("ACCOUNTS#{domain}"), true),
                cursor,
                limit,
            )
            .await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(account_from)
                .collect::<StoreResult<_>>()?,
            cursor: page.cursor,
        })
    }

    async fn list_links(&self, query: &LinkQuery) -> StoreResult<Page<Link>> {
        let mut listing = match &query.domain {
            Some(domain) => Listing::index("gsi1", format!("LINKS#{domain}"), false),
            None => Listing::index("gsi2", "LINKS".into(), false),
        };
        if let Some(activation) = query.activation {
            listing.filter = Some(("activation = :activation", s(activation.as_str())));
        }
        let page = self
            .page(listing, query.cursor.as_deref(), query.limit)
            .await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(link_from)
                .collect::<StoreResult<_>>()?,
            cursor: page.cursor,
        })
    }

    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(address)))
            .key("sk", s("LINK"))
            .update_expression(
                "SET #state = :unlinked, unlinked_at = :at REMOVE gsi1pk, gsi1sk, gsi2pk, gsi2sk",
            )
            .condition_expression("#state = :linked")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":unlinked", s("unlinked"))
            .expression_attribute_values(":linked", s("linked"))
            .expression_attribute_values(":at", time(at))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => link_from(&output.attributes.unwrap_or_default()).map(Some),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let mark_pending = build(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(account_pk(&job.address)))
                .key("sk", s("LINK"))
                .update_expression("SET activation = :pending")
                .condition_expression("subscription_id = :id AND #state = :linked")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":id", s(&job.subscription_id))
                .expression_attribute_values(":linked", s("linked"))
                .build(),
        )?;
        let put_job = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(activation_item(job)))
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(mark_pending).build())
            .transact_items(TransactWriteItem::builder().put(put_job).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_cancelled(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn link(&self, address: &Address) -> StoreResult<Option<Link>> {
        self.get(account_pk(address), "LINK")
            .await?
            .as_ref()
            .map(link_from)
            .transpose()
    }

    async fn insert_link(
        &self,
        link: &Link,
        activation: &ActivationJob,
    ) -> StoreResult<LinkInsert> {
        for _ in 0..RACE_RETRIES {
            let put_link = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(link_item(link)))
                    .condition_expression("attribute_not_exists(pk) OR generation < :generation")
                    .expression_attribute_values(":generation", n(link.generation))
                    .build(),
            )?;
            let put_job = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(activation_item(activation)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_link).build())
                .transact_items(TransactWriteItem::builder().put(put_job).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(LinkInsert::Inserted),
                Err(error) if is_cancelled(&error) => {
                    // Refused or raced: the current link explains which.
                    match self.link(&link.address).await? {
                        Some(current) if current.generation >= link.generation => {
                            return Ok(LinkInsert::Conflict(current));
                        }
                        _ => continue,
                    }
                }
                Err(error) => return Err(backend(error)),
            }
        }
        Err(StoreError::Backend(
            "too much contention on one account's link".into(),
        ))
    }

    async fn unlink(
        &self,
        address: &Address,
        registration: &str,
        generation: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<Unlink> {
        for _ in 0..RACE_RETRIES {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(account_pk(address)))
                .key("sk", s("LINK"))
                .update_expression(
                    "SET #state = :unlinked, unlinked_at = :at, generation = :generation \
                     REMOVE gsi1pk, gsi1sk, gsi2pk, gsi2sk",
                )
                .condition_expression(
                    "#state = :linked AND (generation < :generation OR \
                     (generation = :generation AND registration = :registration))",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":unlinked", s("unlinked"))
                .expression_attribute_values(":linked", s("linked"))
                .expression_attribute_values(":at", time(at))
                .expression_attribute_values(":generation", n(generation))
                .expression_attribute_values(":registration", s(registration))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => {
                    let item = output.attributes.unwrap_or_default();
                    return Ok(Unlink::Unlinked(link_from(&item)?));
                }
                Err(error) if condition_failed(&error) => match self.link(address).await? {
                    None => return Ok(Unlink::NotLinked),
                    Some(current) if !current.is_linked() => return Ok(Unlink::NotLinked),
                    Some(current)
                        if current.generation > generation
                            || (current.generation == generation
                                && current.registration != registration) =>
                    {
                        return Ok(Unlink::Newer(current));
                    }
                    Some(_) => continue,
                },
                Err(error) => return Err(backend(error)),
            }
        }
        Err(StoreError::Backend(
            "too much contention on one account's link".into(),
        ))
    }

    async fn claim_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<ActivationJob>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(subscription_id).into_iter().collect()))
            .update_expression("SET not_before = :lease")
            .condition_expression("attribute_exists(pk) AND not_before <= :now")
            .expression_attribute_values(":lease", n(lease_until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => activation_from(&output.attributes.unwrap_or_default()).map(Some),
            Err(error) if condition_failed(&error) => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }

    async fn due_activations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<ActivationJob>> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("not_before <= :now")
                .expression_attribute_values(":pk", s(OUTBOX_ACTIVATION))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .select(Select::AllAttributes)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend)?;
            for item in output.items.unwrap_or_default() {
                jobs.push(activation_from(&item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() || jobs.len() >= limit {
                break;
            }
        }
        jobs.sort_by_key(|job| job.linked_at);
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn complete_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        for _ in 0..RACE_RETRIES {
            let delete_job = build(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(outbox_key(&job.subscription_id).into_iter().collect()))
                    .build(),
            )?;
            let mark_sent = build(
                Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(account_pk(&job.address)))
                    .key("sk", s("LINK"))
                    .update_expression("SET activation = :sent")
                    .condition_expression("subscription_id = :id AND #state = :linked")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":sent", s("sent"))
                    .expression_attribute_values(":id", s(&job.subscription_id))
                    .expression_attribute_values(":linked", s("linked"))
                    .build(),
            )?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(delete_job).build())
                .transact_items(TransactWriteItem::builder().update(mark_sent).build())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(error) if is_cancelled(&error) => {
                    let current = self.link(&job.address).await?;
                    let still_current = current.is_some_and(|link| {
                        link.is_linked() && link.subscription_id == job.subscription_id
                    });
                    if !still_current {
                        self.discard_activation(&job.subscription_id).await?;
                        return Ok(false);
                    }
                }
                Err(error) => return Err(backend(error)),
            }
        }
        Err(StoreError::Backend(
            "too much contention on one account's link".into(),
        ))
    }

    async fn discard_activation(&self, subscription_id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(subscription_id).into_iter().collect()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn defer_activation(
        &self,
        subscription_id: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(subscription_id).into_iter().collect()))
            .update_expression("SET not_before = :retry ADD attempts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":retry", n(retry_at.timestamp_millis()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Discarded meanwhile (superseded): nothing left to retry.
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(backend(error)),
        }
    }

    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let item = HashMap::from([
            ("pk".into(), s(format!("REPLAY#{key}"))),
            ("sk".into(), s("REPLAY")),
            ("expires_at".into(), n(expires_at.timestamp())),
        ]);
        // TTL deletes lazily, so an expired item may still be there: it no longer counts.
        let condition = "attribute_not_exists(pk) OR expires_at < :now";
        self.put_if(item, condition, vec![(":now", n(now.timestamp()))])
            .await
    }

    async fn failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<u32> {
        match self.get(rate_pk(scope, window_start), "RATE").await? {
            Some(item) => get_n(&item, "failures"),
            None => Ok(0),
        }
    }

    async fn add_failure(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .update_expression("ADD failures :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at.timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        get_n(&output.attributes.unwrap_or_default(), "failures")
    }

    async fn clear_failures(
        &self,
        scope: &FailureScope<'_>,
        window_start: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(rate_pk(scope, window_start)))
            .key("sk", s("RATE"))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_token(&self, token: &AdminToken) -> StoreResult<()> {
        let (scope, scope_domain) = match &token.scope {
            TokenScope::Server => ("server", None),
            TokenScope::Domain(domain) => ("domain", Some(domain.as_str())),
        };
        let mut item: Item = HashMap::from([
            ("pk".into(), s(format!("TOKEN#{}", token.id))),
            ("sk".into(), s("TOKEN")),
            ("gsi2pk".into(), s("TOKENS")),
            (
                "gsi2sk".into(),
                s(format!(
                    "{}#{}",
                    token
                        .created_at
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                    token.id
                )),
            ),
            ("id".into(), s(&token.id)),
            ("secret_hash".into(), s(&token.secret_hash)),
            ("scope".into(), s(scope)),
            ("label".into(), s(&token.label)),
            ("created_at".into(), time(token.created_at)),
        ]);
        if let Some(domain) = scope_domain {
            item.insert("scope_domain".into(), s(domain));
        }
        self.put(item).await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>> {
        self.get(format!("TOKEN#{id}"), "TOKEN")
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.query_partition_of("gsi2", "TOKENS")
            .await?
            .iter()
            .map(token_from)
            .collect()
    }

    async fn delete_token(&self, id: &str) -> StoreResult<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("TOKEN#{id}")))
            .key("sk", s("TOKEN"))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut item: Item = HashMap::from([
            ("pk".into(), s(audit_pk(entry.domain.as_ref()))),
            (
                "sk".into(),
                s(format!(
                    "{}#{}",
                    entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    entry.id
                )),
            ),
            ("id".into(), s(&entry.id)),
            ("at".into(), time(entry.at)),
            ("actor".into(), s(&entry.actor)),
            ("action".into(), s(&entry.action)),
            ("target".into(), s(&entry.target)),
        ]);
        if let Some(domain) = &entry.domain {
            item.insert("domain".into(), s(domain.as_str()));
        }
        self.put(item).await
    }

    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let page = self
            .page(Listing::table(audit_pk(domain), false), cursor, limit)
            .await?;
        let items = page
            .items
            .iter()
            .map(|item| {
                Ok(AuditEntry {
                    id: get_s(item, "id")?.to_owned(),
                    at: get_time(item, "at")?,
                    actor: get_s(item, "actor")?.to_owned(),
                    action: get_s(item, "action")?.to_owned(),
                    target: get_s(item, "target")?.to_owned(),
                    domain: item
                        .get("domain")
                        .map(|_| get_parsed(item, "domain", DomainName::parse))
                        .transpose()?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(Page {
            items,
            cursor: page.cursor,
        })
    }

    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s(account_pk(&mail.to))),
            (
                "sk".into(),
                s(format!(
                    "MAIL#{}#{}",
                    mail.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    mail.id
                )),
            ),
            ("id".into(), s(&mail.id)),
            ("to".into(), s(mail.to.as_str())),
            ("subject".into(), s(&mail.subject)),
            ("body".into(), s(&mail.body)),
            ("at".into(), time(mail.at)),
        ]))
        .await
    }

    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>> {
        let page = self
            .page(Listing::table_prefix(account_pk(to), "MAIL#"), None, limit)
            .await?;
        page.items
            .iter()
            .map(|item| {
                Ok(StoredMail {
                    id: get_s(item, "id")?.to_owned(),
                    to: get_parsed(item, "to", Address::parse)?,
                    subject: get_s(item, "subject")?.to_owned(),
                    body: get_s(item, "body")?.to_owned(),
                    at: get_time(item, "at")?,
                })
            })
            .collect()
    }

    async fn record_heartbeat(
        &self,
        kind: &str,
        instance: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s(format!("HEARTBEAT#{kind}"))),
            ("sk".into(), s(instance)),
            ("at".into(), n(at.timestamp_millis())),
            ("expires_at".into(), n(at.timestamp() + HEARTBEAT_KEEP_SECS)),
        ]))
        .await
    }

    async fn latest_heartbeat(&self, kind: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.query_partition(format!("HEARTBEAT#{kind}"), None, false)
            .await?
            .iter()
            .map(|item| get_millis(item, "at"))
            .try_fold(None, |latest: Option<DateTime<Utc>>, at| {
                let at = at?;
                Ok(Some(latest.map_or(at, |l| l.max(at))))
            })
    }
}
