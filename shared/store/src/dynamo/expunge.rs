//! Removing messages and folders on DynamoDB. An EXPUNGE is one transaction per batch of
//! messages: each message item deleted on the condition that its metadata is what was read
//! (so a `\Deleted` cleared meanwhile keeps the message), an `expunged` change for each, and
//! the folder's count and the account's usage and change counter, conditioned on what was
//! read. Bodies are deleted from S3 once the transaction stands.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Folder, MessageMeta};

use super::mailbox::{folder_sk, message_sk};
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

    pub(super) async fn remove_folder_if_empty(
        &self,
        account: &Address,
        name: &FolderName,
    ) -> StoreResult<FolderChange> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(account)))
            .key("sk", s(folder_sk(name)))
            .condition_expression("attribute_exists(pk) AND messages = :zero")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(FolderChange::Done),
            Err(error) if condition_failed(&error) => {
                Ok(match self.folder(account, name).await? {
                    Some(_) => FolderChange::NotEmpty,
                    None => FolderChange::NoSuchFolder,
                })
            }
            Err(error) => Err(backend(error)),
        }
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
