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
    AccountDelete, AccountUpdate, ChangeWindow, DomainDelete, FailureScope, LinkInsert, LinkQuery,
    SecretAdd, StoreError, StoreResult, TokenDelete, Unlink,
};
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, AdminToken, AuditEntry, Device, Domain,
    DomainName, Link, LinkState, Page, PushSecret, ServerSettings, StoredMail, TokenScope,
    UnlinkRule,
};

type Item = HashMap<String, AttributeValue>;

mod bodies;
mod client;
mod codec;
mod keys;
mod paging;
pub use bodies::{BodyStore, S3Bodies};
use client::*;
use codec::*;
use due_order::due_attributes;
use keys::*;
use paging::*;

const OUTBOX_ACTIVATION: &str = "OUTBOX#activation";
const RELAY_PK: &str = "RELAY";
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
    bodies: Option<Arc<dyn BodyStore>>,
    /// Deliveries to one account from this process take turns (striped by account), so they
    /// do not spend their conditional writes on each other; other processes still race, and
    /// the conditions decide.
    delivery_turns: Arc<[tokio::sync::Mutex<()>; DELIVERY_STRIPES]>,
    /// How much of each account's change log is kept.
    change_window: ChangeWindow,
    /// Whether this process has seen that the notices' queue items are complete (see
    /// `notice_queue.rs`), and the relay and outbox items' due order (`due_order.rs`).
    notice_order_backfilled: Arc<tokio::sync::OnceCell<()>>,
    due_order_backfilled: Arc<tokio::sync::OnceCell<()>>,
}

const DELIVERY_STRIPES: usize = 64;

impl DynamoStore {
    pub fn new(client: Client, config: DynamoStoreConfig) -> Self {
        Self {
            client,
            table: config.table,
            bodies: None,
            delivery_turns: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            change_window: ChangeWindow::DEFAULT,
            notice_order_backfilled: Arc::default(),
            due_order_backfilled: Arc::default(),
        }
    }

    /// The store keeping `window` of each account's change log (the default:
    /// [`ChangeWindow::DEFAULT`]).
    pub fn with_change_window(mut self, window: ChangeWindow) -> Self {
        self.change_window = window;
        self
    }

    /// The store with message bodies kept in `bodies` (needed for [`crate::MailboxStore`]).
    pub fn with_bodies(mut self, bodies: Arc<dyn BodyStore>) -> Self {
        self.bodies = Some(bodies);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }
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
        Ok(unless_condition_failed(result)?.is_some())
    }
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

mod accounts;
mod admin;
mod deliver;
mod domains;
mod due_order;
mod expunge;
mod flags;
mod guards;
mod kept_mail;
mod links;
mod liveness;
mod mailbox;
mod notice_queue;
mod notices;
mod outbox;
mod purge;
mod relay;
