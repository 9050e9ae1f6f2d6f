//! Mailboxes on DynamoDB, bodies in S3: the item layout, folders and reads. Storing a message
//! is in `deliver.rs`, flag changes in `flags.rs`, removals in `expunge.rs`.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{
    DEFAULT_FOLDERS, FlagChange, Folder, MessageMeta, NewMessage, SpecialUse,
};

use super::*;
use crate::mailbox::{Change, ChangeKind, Delivery, FlagUpdate, FolderChange};

pub(super) const STATE_SK: &str = "MAILSTATE";

pub(super) fn folder_sk(name: &FolderName) -> String {
    format!("FOLDER#{name}")
}

/// A subscription kept when its folder was deleted.
pub(super) const SUBSCRIPTION_PREFIX: &str = "SUBSCRIPTION#";

pub(super) fn subscription_sk(name: &FolderName) -> String {
    format!("{SUBSCRIPTION_PREFIX}{name}")
}

/// U+0001 ends the folder's name: no folder name contains a control character, so one
/// folder's messages never sort among another's (`a` and `a#b`, say).
pub(super) fn message_sk(name: &FolderName, uid: u32) -> String {
    format!("MSG#{name}\u{1}{uid:010}")
}

/// Above every message key of the folder.
fn messages_end(name: &FolderName) -> String {
    format!("MSG#{name}\u{2}")
}

pub(super) fn change_sk(counter: u64) -> String {
    format!("CHANGE#{counter:020}")
}

fn special_use_str(role: SpecialUse) -> &'static str {
    match role {
        SpecialUse::Sent => "sent",
        SpecialUse::Drafts => "drafts",
        SpecialUse::Trash => "trash",
        SpecialUse::Junk => "junk",
    }
}

/// The address's UIDVALIDITY floor (see `create_folder_item`).
pub(super) const UID_VALIDITY_SK: &str = "UIDVALIDITY";

fn folder_item(folder: &Folder) -> Item {
    let mut item: Item = HashMap::from([
        ("pk".into(), s(account_pk(&folder.account))),
        ("sk".into(), s(folder_sk(&folder.name))),
        ("account".into(), s(folder.account.as_str())),
        ("name".into(), s(folder.name.as_str())),
        ("uid_validity".into(), n(folder.uid_validity)),
        ("uid_next".into(), n(folder.uid_next)),
        ("highest_modseq".into(), n(folder.highest_modseq)),
        ("messages".into(), n(folder.messages)),
        ("created_at".into(), time(folder.created_at)),
        ("subscribed".into(), AttributeValue::Bool(folder.subscribed)),
    ]);
    if let Some(role) = folder.special_use {
        item.insert("special_use".into(), s(special_use_str(role)));
    }
    item
}

fn folder_from(item: &Item) -> StoreResult<Folder> {
    let special_use = match get_opt_s(item, "special_use").as_deref() {
        None => None,
        Some("sent") => Some(SpecialUse::Sent),
        Some("drafts") => Some(SpecialUse::Drafts),
        Some("trash") => Some(SpecialUse::Trash),
        Some("junk") => Some(SpecialUse::Junk),
        Some(_) => return Err(corrupt(item, "special_use")),
    };
    Ok(Folder {
        account: get_parsed(item, "account", Address::parse)?,
        name: get_parsed(item, "name", FolderName::parse)?,
        uid_validity: get_n(item, "uid_validity")?,
        uid_next: get_n(item, "uid_next")?,
        highest_modseq: get_n(item, "highest_modseq")?,
        special_use,
        messages: get_n(item, "messages")?,
        created_at: get_time(item, "created_at")?,
        // Absent on folders written before subscriptions were kept: subscribed.
        subscribed: !item.contains_key("subscribed") || get_bool(item, "subscribed")?,
        // Absent until a session first claims recent messages.
        recent_up_to: if item.contains_key("recent_up_to") {
            get_n(item, "recent_up_to")?
        } else {
            0
        },
    })
}

/// An S3 key of the body's own: message bodies are immutable, and a retried delivery reuses it.
pub(super) fn body_key(account: &Address) -> String {
    format!("mail/{account}/{}", uuid::Uuid::new_v4().simple())
}

impl DynamoStore {
    /// Where a message's body is kept in the body store; `None` if the message is not there.
    async fn stored_body_key(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<String>> {
        let item = self
            .get(account_pk(account), &message_sk(folder, uid))
            .await?;
        item.map(|item| get_s(&item, "body_key").map(str::to_owned))
            .transpose()
    }

    /// Up to `limit` items of a partition with sort keys after `after`, up to `end`, in order.
    async fn items_after(
        &self,
        pk: String,
        after: String,
        end: String,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :after AND :end")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":after", s(&after))
            .expression_attribute_values(":end", s(&end))
            .consistent_read(true);
        let mut items = Vec::new();
        each_item(query, |item| {
            // BETWEEN includes `after` itself.
            if get_s(&item, "sk")? != after {
                items.push(item);
            }
            Ok(items.len() < limit)
        })
        .await?;
        Ok(items)
    }

    pub(super) fn bodies(&self) -> StoreResult<&Arc<dyn BodyStore>> {
        self.bodies.as_ref().ok_or_else(|| {
            StoreError::Backend("no S3 bucket is configured for message bodies".into())
        })
    }

    /// The account's usage and change counter, and whether the item exists.
    /// This process's writes to one account's mailbox take turns (striped by account), so
    /// they do not spend their conditional writes on each other; other processes still race.
    pub(super) async fn account_turn(&self, account: &Address) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        account.hash(&mut hasher);
        let stripe = (hasher.finish() % DELIVERY_STRIPES as u64) as usize;
        self.delivery_turns[stripe].lock().await
    }

    /// The update of the account's mailbox state, conditioned on the change counter read
    /// (`changes`, or no state item yet); the caller sets what it writes.
    pub(super) fn state_update(
        &self,
        account: &Address,
        changes: u64,
        state_exists: bool,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(STATE_SK));
        if state_exists {
            update
                .condition_expression("changes = :changes")
                .expression_attribute_values(":changes", n(changes))
        } else {
            update.condition_expression("attribute_not_exists(pk)")
        }
    }

    /// The change-log item numbered `counter`.
    pub(super) fn change_put(
        &self,
        account: &Address,
        counter: u64,
        folder: &FolderName,
        uid: u32,
        kind: ChangeKind,
    ) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .item("pk", s(account_pk(account)))
            .item("sk", s(change_sk(counter)))
            .item("counter", n(counter))
            .item("folder", s(folder.as_str()))
            .item("uid", n(uid))
            .item("kind", s(kind.as_str()))
            .condition_expression("attribute_not_exists(pk)")
    }

    /// Creates a folder unless it exists (then it is left as it is), in one transaction with
    /// the address's UIDVALIDITY floor (`UIDVALIDITY` item, raised only, kept when the account
    /// is purged), so no name ever gets a UIDVALIDITY it had before.
    async fn create_folder_item(
        &self,
        account: &Address,
        name: &FolderName,
        special_use: Option<SpecialUse>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let pk = account_pk(account);
        contended("one account's folders", || async {
            if self.folder(account, name).await?.is_some() {
                return Ok(Attempt::Done(()));
            }
            let floor = match self.get(pk.clone(), UID_VALIDITY_SK).await? {
                Some(item) => Some(get_n::<u32>(&item, "floor")?),
                None => None,
            };
            let folder = Folder::new(
                account.clone(),
                name.clone(),
                special_use,
                at,
                floor.unwrap_or(0),
            );
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(folder_item(&folder)))
                .condition_expression("attribute_not_exists(pk)");
            let raise = Update::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(UID_VALIDITY_SK))
                .update_expression("SET floor = :new")
                .expression_attribute_values(":new", n(folder.uid_validity));
            let raise = match floor {
                Some(floor) => raise
                    .condition_expression("floor = :read")
                    .expression_attribute_values(":read", n(floor)),
                None => raise.condition_expression("attribute_not_exists(pk)"),
            };
            Ok(
                if self
                    .transact(vec![put_write(put)?, update_write(raise)?])
                    .await?
                {
                    Attempt::Done(())
                } else {
                    Attempt::Raced
                },
            )
        })
        .await
    }

    pub(super) async fn mail_state(&self, account: &Address) -> StoreResult<(u64, u64, bool)> {
        Ok(match self.get(account_pk(account), STATE_SK).await? {
            Some(item) => (get_n(&item, "usage_bytes")?, get_n(&item, "changes")?, true),
            None => (0, 0, false),
        })
    }
}

#[async_trait]
impl crate::MailboxStore for DynamoStore {
    async fn create_default_folders(
        &self,
        account: &Address,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        for (name, special_use) in DEFAULT_FOLDERS {
            let name = FolderName::parse(name)
                .map_err(|e| StoreError::Corrupt(format!("default folder: {}", e.0)))?;
            self.create_folder_item(account, &name, special_use, at)
                .await?;
        }
        Ok(())
    }

    async fn create_folder(
        &self,
        account: &Address,
        name: &FolderName,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.create_folder_item(account, name, None, at).await
    }

    async fn folders(&self, account: &Address) -> StoreResult<Vec<Folder>> {
        self.query_partition(account_pk(account), Some("FOLDER#"), false)
            .await?
            .iter()
            .map(folder_from)
            .collect()
    }

    async fn folder(&self, account: &Address, name: &FolderName) -> StoreResult<Option<Folder>> {
        self.get(account_pk(account), &folder_sk(name))
            .await?
            .as_ref()
            .map(folder_from)
            .transpose()
    }

    async fn deliver(
        &self,
        account: &Address,
        folder: &FolderName,
        message: &NewMessage,
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        self.store_messages(
            account,
            folder,
            std::slice::from_ref(message),
            quota_bytes,
            true,
        )
        .await
    }

    async fn append_all(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
    ) -> StoreResult<Delivery> {
        self.store_messages(account, folder, messages, quota_bytes, false)
            .await
    }

    async fn expunge(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>> {
        self.remove_messages(account, folder, uids, only_deleted)
            .await
    }

    async fn remove_empty_folder(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        self.remove_folder_if_empty(account, name).await
    }

    async fn subscriptions_without_folder(
        &self,
        account: &Address,
    ) -> StoreResult<Vec<FolderName>> {
        self.subscriptions_without_folder_of(account).await
    }

    async fn set_subscribed(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool> {
        self.subscribe(account, name, subscribed).await
    }

    async fn claim_recent(
        &self,
        account: &Address,
        name: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>> {
        self.claim_recent_up_to(account, name, up_to).await
    }

    async fn change_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagUpdate> {
        self.write_flags(account, folder, uid, change, unchanged_since)
            .await
    }

    async fn messages(
        &self,
        account: &Address,
        folder: &FolderName,
        after_uid: u32,
        limit: usize,
    ) -> StoreResult<Vec<MessageMeta>> {
        self.items_after(
            account_pk(account),
            message_sk(folder, after_uid),
            messages_end(folder),
            limit,
        )
        .await?
        .iter()
        .map(|item| {
            serde_json::from_str(get_s(item, "meta")?)
                .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))
        })
        .collect()
    }

    async fn message_body(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        match self.stored_body_key(account, folder, uid).await? {
            Some(key) => Ok(Some(self.bodies()?.body(&key).await?)),
            None => Ok(None),
        }
    }

    async fn message_header(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
    ) -> StoreResult<Option<Vec<u8>>> {
        match self.stored_body_key(account, folder, uid).await? {
            Some(key) => Ok(Some(self.bodies()?.header(&key).await?)),
            None => Ok(None),
        }
    }

    async fn changes_since(
        &self,
        account: &Address,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Change>> {
        self.items_after(
            account_pk(account),
            change_sk(after),
            "CHANGE#~".into(),
            limit,
        )
        .await?
        .iter()
        .map(|item| {
            Ok(Change {
                counter: get_n(item, "counter")?,
                folder: get_parsed(item, "folder", FolderName::parse)?,
                uid: get_n(item, "uid")?,
                kind: ChangeKind::parse(get_s(item, "kind")?)
                    .ok_or_else(|| corrupt(item, "kind"))?,
            })
        })
        .collect()
    }

    async fn mailbox_usage(&self, account: &Address) -> StoreResult<u64> {
        Ok(self.mail_state(account).await?.0)
    }

    async fn latest_change(&self, account: &Address) -> StoreResult<u64> {
        Ok(self.mail_state(account).await?.1)
    }
}
