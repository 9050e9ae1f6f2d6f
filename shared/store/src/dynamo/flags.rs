//! Flag changes on DynamoDB: one transaction that rewrites the message's metadata and raises
//! the folder's HIGHESTMODSEQ and the account's change counter, each conditioned on what was
//! read, with the change-log item; a racing writer makes it read again.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{FlagChange, MessageMeta};

use super::mailbox::{folder_sk, message_sk};
use super::*;
use crate::mailbox::{ChangeKind, FlagUpdate};

impl DynamoStore {
    pub(super) async fn write_flags(
        &self,
        account: &Address,
        folder: &FolderName,
        uid: u32,
        change: &FlagChange,
        unchanged_since: Option<u64>,
    ) -> StoreResult<FlagUpdate> {
        let pk = account_pk(account);
        let _turn = self.account_turn(account).await;
        contended("one account's mailbox", || async {
            let Some(item) = self.get(pk.clone(), &message_sk(folder, uid)).await? else {
                return Ok(Attempt::Done(FlagUpdate::NoSuchMessage));
            };
            let old_json = get_s(&item, "meta")?.to_owned();
            let mut meta: MessageMeta = serde_json::from_str(&old_json)
                .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
            // The write below is conditioned on this very metadata, so the check holds.
            if unchanged_since.is_some_and(|since| meta.modseq > since) {
                return Ok(Attempt::Done(FlagUpdate::Modified));
            }
            let flags = change.apply(&meta.flags);
            if flags == meta.flags {
                return Ok(Attempt::Done(FlagUpdate::Applied {
                    flags,
                    modseq: meta.modseq,
                }));
            }
            let Some(current) = self.folder(account, folder).await? else {
                return Ok(Attempt::Done(FlagUpdate::NoSuchMessage));
            };
            let (_, changes, state_exists) = self.mail_state(account).await?;
            let modseq = current.highest_modseq + 1;
            let counter = changes + 1;
            meta.flags = flags.clone();
            meta.modseq = modseq;
            let new_json = serde_json::to_string(&meta)
                .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
            let state = self
                .state_update(account, changes, state_exists)
                .update_expression("SET changes = :next")
                .expression_attribute_values(":next", n(counter));
            let writes = vec![
                update_write(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(message_sk(folder, uid)))
                        .update_expression("SET meta = :new")
                        .condition_expression("meta = :old")
                        .expression_attribute_values(":new", s(new_json))
                        .expression_attribute_values(":old", s(&old_json)),
                )?,
                update_write(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(folder_sk(folder)))
                        .update_expression("SET highest_modseq = :modseq")
                        .condition_expression("highest_modseq = :seen")
                        .expression_attribute_values(":modseq", n(modseq))
                        .expression_attribute_values(":seen", n(current.highest_modseq)),
                )?,
                update_write(state)?,
                put_write(self.change_put(account, counter, folder, uid, ChangeKind::Flags))?,
            ];
            Ok(if self.transact(writes).await? {
                self.logged_changes(account, counter, counter).await;
                Attempt::Done(FlagUpdate::Applied { flags, modseq })
            } else {
                Attempt::Raced
            })
        })
        .await
    }
}
