//! Removing messages and folders on DynamoDB. An EXPUNGE is one transaction per batch of
//! messages: each message item deleted on the condition that its metadata is what was read
//! (so a `\Deleted` cleared meanwhile keeps the message), an `expunged` change for each, and
//! the folder's count and the account's usage and change counter, conditioned on what was
//! read. Bodies are deleted from S3 once the transaction stands.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Flagged, Folder, MAX_KEPT_SUBSCRIPTIONS, MessageMeta};

use super::mailbox::{SUBSCRIPTION_PREFIX, folder_sk, message_sk, subscription_sk};
use super::*;
use crate::mailbox::{ChangeKind, FolderChange};

/// Messages per transaction: two items each, plus the folder and the account state, within
/// DynamoDB's 100 items.
const BATCH: usize = 40;

impl DynamoStore {
    pub(super) async fn remove_messages(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<Vec<u32>> {
        let mut wanted = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut removed = Vec::new();
        for batch in wanted.chunks(BATCH) {
            let (uids, body_keys) = self
                .remove_batch(account, folder, batch, only_deleted)
                .await?;
            removed.extend(uids);
            let bodies = self.bodies()?;
            for key in body_keys {
                // A body left behind costs storage, never correctness: nothing points at it.
                if let Err(error) = bodies.delete_body(&key).await {
                    tracing::warn!(%error, "an expunged message's body stays in S3");
                }
            }
        }
        Ok(removed)
    }

    async fn remove_batch(
        &self,
        account: &Address,
        folder: &FolderName,
        uids: &[u32],
        only_deleted: bool,
    ) -> StoreResult<(Vec<u32>, Vec<String>)> {
        let pk = account_pk(account);
        let _turn = self.account_turn(account).await;
        contended("one account's mailbox", || async {
            let Some(current) = self.folder(account, folder).await? else {
                return Ok(Attempt::Done((Vec::new(), Vec::new())));
            };
            let mut doomed = Vec::new();
            for &uid in uids {
                let Some(item) = self.get(pk.clone(), &message_sk(folder, uid)).await? else {
                    continue;
                };
                let json = get_s(&item, "meta")?.to_owned();
                let meta: MessageMeta = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
                if only_deleted && !meta.is_deleted() {
                    continue;
                }
                doomed.push((uid, json, meta.size, get_s(&item, "body_key")?.to_owned()));
            }
            if doomed.is_empty() {
                return Ok(Attempt::Done((Vec::new(), Vec::new())));
            }
            let (usage, changes, state_exists) = self.mail_state(account).await?;
            let freed: u64 = doomed.iter().map(|(_, _, size, _)| size).sum();
            let last_change = changes + doomed.len() as u64;
            let mut writes = vec![
                update_write(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(folder_sk(folder)))
                        .update_expression("SET highest_modseq = :modseq ADD messages :gone")
                        .condition_expression("highest_modseq = :seen")
                        .expression_attribute_values(":modseq", n(current.highest_modseq + 1))
                        .expression_attribute_values(":gone", n(-(doomed.len() as i64)))
                        .expression_attribute_values(":seen", n(current.highest_modseq)),
                )?,
                update_write(
                    self.state_update(account, changes, state_exists)
                        .update_expression("SET changes = :next, usage_bytes = :usage")
                        .expression_attribute_values(":next", n(last_change))
                        .expression_attribute_values(":usage", n(usage.saturating_sub(freed))),
                )?,
            ];
            for (i, (uid, json, _, _)) in doomed.iter().enumerate() {
                writes.push(delete_write(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(message_sk(folder, *uid)))
                        .condition_expression("meta = :meta")
                        .expression_attribute_values(":meta", s(json)),
                )?);
                let counter = changes + 1 + i as u64;
                writes.push(put_write(self.change_put(
                    account,
                    counter,
                    folder,
                    *uid,
                    ChangeKind::Expunged,
                ))?);
            }
            Ok(if self.transact(writes).await? {
                self.logged_changes(account, changes + 1, last_change).await;
                Attempt::Done(
                    doomed
                        .into_iter()
                        .map(|(uid, _, _, key)| (uid, key))
                        .unzip(),
                )
            } else {
                Attempt::Raced
            })
        })
        .await
    }

    /// Deletes the folder if empty and, in the same transaction, keeps its subscription as it
    /// was read (the delete conditioned on it) or lets a stale kept one go.
    pub(super) async fn remove_folder_if_empty(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        let pk = account_pk(account);
        contended("a folder being deleted", || async {
            let Some(folder) = self.folder(account, name).await? else {
                return Ok(Attempt::Done(FolderChange::NoSuchFolder));
            };
            if folder.messages > 0 {
                return Ok(Attempt::Done(FolderChange::NotEmpty));
            }
            let keep = folder.subscribed
                && self.kept_subscriptions(account).await?.len() < MAX_KEPT_SUBSCRIPTIONS;
            // A folder written before subscriptions were kept has no flag: subscribed.
            let unchanged = match folder.subscribed {
                true => "(attribute_not_exists(subscribed) OR subscribed = :subscribed)",
                false => "subscribed = :subscribed",
            };
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(folder_sk(name)))
                .condition_expression(format!(
                    "attribute_exists(pk) AND messages = :zero AND {unchanged}"
                ))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(
                    ":subscribed",
                    AttributeValue::Bool(folder.subscribed),
                );
            let kept = match keep {
                true => put_write(
                    Put::builder()
                        .table_name(&self.table)
                        .item("pk", s(&pk))
                        .item("sk", s(subscription_sk(name))),
                )?,
                false => delete_write(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(subscription_sk(name))),
                )?,
            };
            Ok(
                match self.transact(vec![delete_write(delete)?, kept]).await? {
                    true => Attempt::Done(FolderChange::Done),
                    false => Attempt::Raced,
                },
            )
        })
        .await
    }

    /// Names whose subscription was kept when their folder was deleted (some may have a
    /// folder again).
    async fn kept_subscriptions(&self, account: &Address) -> StoreResult<Vec<FolderName>> {
        let items = self
            .query_partition(account_pk(account), Some(SUBSCRIPTION_PREFIX), false)
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| get_s(item, "sk").ok())
            .filter_map(|sk| sk.strip_prefix(SUBSCRIPTION_PREFIX))
            .filter_map(|name| FolderName::parse(name).ok())
            .collect())
    }

    pub(super) async fn subscriptions_without_folder_of(
        &self,
        account: &Address,
    ) -> StoreResult<Vec<FolderName>> {
        let kept = self.kept_subscriptions(account).await?;
        if kept.is_empty() {
            return Ok(kept);
        }
        let folders = self.folders(account).await?;
        Ok(kept
            .into_iter()
            .filter(|name| !folders.iter().any(|f| f.name == *name))
            .collect())
    }

    /// UNSUBSCRIBE of a name with no folder: its kept subscription goes, if it had one.
    async fn forget_subscription(&self, account: &Address, name: &FolderName) -> StoreResult<bool> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(subscription_sk(name)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(backend)?;
        Ok(deleted.attributes.is_some_and(|old| !old.is_empty()))
    }

    pub(super) async fn subscribe(
        &self,
        account: &Address,
        name: &FolderName,
        subscribed: bool,
    ) -> StoreResult<bool> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(folder_sk(name)))
            .update_expression("SET subscribed = :subscribed")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":subscribed", AttributeValue::Bool(subscribed))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) && !subscribed => {
                self.forget_subscription(account, name).await
            }
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    /// The folder's `recent_up_to` raised to `up_to` if it was below (a folder written before
    /// the mark was kept has none: 0), returning what it was; nothing if it was not.
    pub(super) async fn claim_recent_up_to(
        &self,
        account: &Address,
        name: &FolderName,
        up_to: u32,
    ) -> StoreResult<std::ops::RangeInclusive<u32>> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(folder_sk(name)))
            .update_expression("SET recent_up_to = :up_to")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(recent_up_to) OR recent_up_to < :up_to)",
            )
            .expression_attribute_values(":up_to", n(up_to))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedOld)
            .send()
            .await;
        match updated {
            Ok(output) => {
                let previous = match output.attributes() {
                    Some(old) if old.contains_key("recent_up_to") => get_n(old, "recent_up_to")?,
                    _ => 0,
                };
                Ok(Folder::recent_claimed(previous, up_to))
            }
            Err(error) if condition_failed(&error) => Ok(Folder::recent_claimed(up_to, up_to)),
            Err(error) => Err(backend(error)),
        }
    }
}
