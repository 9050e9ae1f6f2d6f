//! Items and attributes: how each record is written to and read from the table.

use super::*;

// --- attribute helpers -----------------------------------------------------------------------

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn time(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub(super) fn backend<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    metrics::counter!(pushmail_core::metric_names::STORE_ERRORS, "backend" => "dynamodb")
        .increment(1);
    // The service's own code and message; the whole error context only when there is none.
    let detail = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
    };
    StoreError::Backend(detail)
}

pub(super) fn corrupt(item: &Item, field: &str) -> StoreError {
    let key = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    StoreError::Corrupt(format!(
        "item {key}: attribute `{field}` is missing or ill-typed"
    ))
}

pub(super) fn get_s<'a>(item: &'a Item, field: &str) -> StoreResult<&'a str> {
    item.get(field)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(item, field))
}

pub(super) fn get_opt_s(item: &Item, field: &str) -> Option<String> {
    item.get(field).and_then(|v| v.as_s().ok()).cloned()
}

pub(super) fn get_bool(item: &Item, field: &str) -> StoreResult<bool> {
    item.get(field)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| corrupt(item, field))
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, field: &str) -> StoreResult<T> {
    item.get(field)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| corrupt(item, field))
}

pub(super) fn get_time(item: &Item, field: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(get_s(item, field)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(item, field))
}

pub(super) fn get_millis(item: &Item, field: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(get_n(item, field)?).ok_or_else(|| corrupt(item, field))
}

pub(super) fn get_parsed<T>(
    item: &Item,
    field: &str,
    parse: impl Fn(&str) -> Result<T, pushmail_core::types::InvalidName>,
) -> StoreResult<T> {
    parse(get_s(item, field)?).map_err(|_| corrupt(item, field))
}

pub(super) fn put_device(item: &mut Item, device: &Option<Device>) {
    if let Some(device) = device {
        if let Some(pin) = &device.pin {
            item.insert("device_pin".into(), s(pin));
        }
        if let Some(model) = &device.model {
            item.insert("device_model".into(), s(model));
        }
    }
}

pub(super) fn get_device(item: &Item) -> Option<Device> {
    let device = Device {
        pin: get_opt_s(item, "device_pin"),
        model: get_opt_s(item, "device_model"),
    };
    (device != Device::default()).then_some(device)
}

// --- item mapping ----------------------------------------------------------------------------

/// A domain's settings as attributes; `None` fields are removed by an update.
pub(super) fn domain_fields(domain: &Domain) -> Vec<(&'static str, Option<AttributeValue>)> {
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

pub(super) fn domain_from(item: &Item) -> StoreResult<Domain> {
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
pub(super) struct FieldUpdate {
    pub(super) expression: String,
    pub(super) names: HashMap<String, String>,
    pub(super) values: HashMap<String, AttributeValue>,
}

pub(super) fn field_update(fields: Vec<(&'static str, Option<AttributeValue>)>) -> FieldUpdate {
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

pub(super) fn account_item(account: &Account) -> Item {
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
        ("revision".into(), n(account.revision)),
    ]);
    if let Some(quota) = account.quota_bytes {
        item.insert("quota_bytes".into(), n(quota));
    }
    if let Some(name) = &account.display_name {
        item.insert("display_name".into(), s(name));
    }
    if !account.filing_rules.is_empty()
        && let Ok(rules) = serde_json::to_string(&account.filing_rules)
    {
        item.insert("filing_rules".into(), s(rules));
    }
    if !account.sender_aliases.is_empty() {
        let aliases = account.sender_aliases.iter().map(|a| s(a.as_str()));
        item.insert(
            "sender_aliases".into(),
            AttributeValue::L(aliases.collect()),
        );
    }
    item
}

/// A list of strings, each read with `parse`; absent is empty.
fn get_list<T>(item: &Item, field: &str, parse: impl Fn(&str) -> Option<T>) -> StoreResult<Vec<T>> {
    match item.get(field) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .ok()
                    .and_then(|text| parse(text))
                    .ok_or_else(|| corrupt(item, field))
            })
            .collect(),
        Some(_) => Err(corrupt(item, field)),
    }
}

pub(super) fn account_from(item: &Item) -> StoreResult<Account> {
    Ok(Account {
        address: get_parsed(item, "address", Address::parse)?,
        password_hash: get_s(item, "password_hash")?.to_owned(),
        enabled: get_bool(item, "enabled")?,
        display_name: get_opt_s(item, "display_name"),
        pushed_folders: get_list(item, "pushed_folders", |text| Some(text.to_owned()))?,
        created_at: get_time(item, "created_at")?,
        revision: match item.get("revision") {
            None => 0,
            Some(_) => get_n(item, "revision")?,
        },
        quota_bytes: match item.get("quota_bytes") {
            None => None,
            Some(_) => Some(get_n(item, "quota_bytes")?),
        },
        sender_aliases: get_list(item, "sender_aliases", |text| Address::parse(text).ok())?,
        filing_rules: match get_opt_s(item, "filing_rules") {
            Some(json) => serde_json::from_str(&json).map_err(|_| corrupt(item, "filing_rules"))?,
            None => Vec::new(),
        },
    })
}

/// The sort key of the integrated-accounts indexes: newest first when read backwards.
pub(super) fn link_index_sk(link: &Link) -> String {
    format!(
        "{}#{}",
        link.linked_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        link.address
    )
}

pub(super) fn link_item(link: &Link) -> Item {
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

pub(super) fn link_state_str(state: LinkState) -> &'static str {
    match state {
        LinkState::Linked => "linked",
        LinkState::Unlinked => "unlinked",
        LinkState::Removed => "removed",
    }
}

pub(super) fn link_from(item: &Item) -> StoreResult<Link> {
    let state = match get_s(item, "state")? {
        "linked" => LinkState::Linked,
        "unlinked" => LinkState::Unlinked,
        "removed" => LinkState::Removed,
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

pub(super) fn activation_item(job: &ActivationJob) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(OUTBOX_ACTIVATION)),
        ("sk".into(), s(outbox_sk(&job.subscription_id))),
        ("subscription_id".into(), s(&job.subscription_id)),
        ("address".into(), s(job.address.as_str())),
        ("linked_at".into(), time(job.linked_at)),
        ("attempts".into(), n(job.attempts)),
        ("not_before".into(), n(job.not_before.timestamp_millis())),
    ]);
    item.extend(due_attributes(
        OUTBOX_ACTIVATION,
        &outbox_sk(&job.subscription_id),
        job.not_before,
    ));
    put_device(&mut item, &job.device);
    item
}

pub(super) fn activation_from(item: &Item) -> StoreResult<ActivationJob> {
    Ok(ActivationJob {
        subscription_id: get_s(item, "subscription_id")?.to_owned(),
        address: get_parsed(item, "address", Address::parse)?,
        device: get_device(item),
        linked_at: get_time(item, "linked_at")?,
        attempts: get_n(item, "attempts")?,
        not_before: get_millis(item, "not_before")?,
    })
}

pub(super) fn outbox_key(subscription_id: &str) -> [(String, AttributeValue); 2] {
    [
        ("pk".into(), s(OUTBOX_ACTIVATION)),
        ("sk".into(), s(outbox_sk(subscription_id))),
    ]
}

pub(super) fn build<T, E: std::fmt::Display>(built: Result<T, E>) -> StoreResult<T> {
    built.map_err(|e| StoreError::Backend(format!("request could not be built: {e}")))
}
