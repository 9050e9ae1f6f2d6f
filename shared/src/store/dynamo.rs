//! The DynamoDB backend: one table, keys and items as in docs/data-model.md.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, Select, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{FailureScope, LinkInsert, Store, StoreError, StoreResult, Unlink};
use crate::types::{
    Account, ActivationJob, ActivationState, Address, Device, Domain, DomainName, Link, LinkState,
    PushSecret, ServerSettings,
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
    pub(crate) fn new(client: Client, config: DynamoStoreConfig) -> Self {
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
    parse: impl Fn(&str) -> Result<T, crate::types::InvalidName>,
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

fn domain_item(domain: &Domain) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(domain_pk(&domain.name))),
        ("sk".into(), s("DOMAIN")),
        ("gsi1pk".into(), s("DOMAINS")),
        ("gsi1sk".into(), s(domain.name.as_str())),
        ("name".into(), s(domain.name.as_str())),
        (
            "push_enabled".into(),
            AttributeValue::Bool(domain.push_enabled),
        ),
        ("sent_items_alias".into(), s(&domain.sent_items_alias)),
        ("deleted_items_alias".into(), s(&domain.deleted_items_alias)),
        ("created_at".into(), time(domain.created_at)),
    ]);
    if let Some(url) = &domain.subscribe_url {
        item.insert("subscribe_url".into(), s(url));
    }
    if let Some(host) = &domain.smtp_server {
        item.insert("smtp_server".into(), s(host));
    }
    item
}

fn domain_from(item: &Item) -> StoreResult<Domain> {
    Ok(Domain {
        name: get_parsed(item, "name", DomainName::parse)?,
        push_enabled: get_bool(item, "push_enabled")?,
        subscribe_url: get_opt_s(item, "subscribe_url"),
        smtp_server: get_opt_s(item, "smtp_server"),
        sent_items_alias: get_s(item, "sent_items_alias")?.to_owned(),
        deleted_items_alias: get_s(item, "deleted_items_alias")?.to_owned(),
        created_at: get_time(item, "created_at")?,
    })
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
        self.put(domain_item(domain)).await
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

    async fn add_push_secret(&self, domain: &DomainName, secret: &PushSecret) -> StoreResult<()> {
        let created = secret
            .created_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        self.put(HashMap::from([
            ("pk".into(), s(domain_pk(domain))),
            ("sk".into(), s(format!("SECRET#{created}#{}", secret.id))),
            ("id".into(), s(&secret.id)),
            ("value".into(), s(&secret.value)),
            ("created_at".into(), s(created)),
        ]))
        .await
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
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_transaction_canceled_exception()) =>
                {
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
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    match self.link(address).await? {
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
                    }
                }
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
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
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
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_transaction_canceled_exception()) =>
                {
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
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn remember_signature(
        &self,
        key: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("REPLAY#{key}")))
            .item("sk", s("REPLAY"))
            .item("expires_at", n(expires_at.timestamp()))
            // TTL deletes lazily, so an expired item may still be there: it no longer counts.
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(backend(error)),
        }
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
