//! Storing messages on DynamoDB (a delivery, or an APPEND of one or several). The bodies are
//! uploaded first, each under a key of its own, so a retried transaction reuses them; then one
//! transaction records everything else: the folder's `uid_next` and counters and the account's usage and change
//! counter, each conditioned on the values read, plus the message and change items and the
//! new-mail notice. Two processes storing to one account at once conflict, and the loser
//! reads again: UIDs only grow, none is shared.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Envelope, MessageMeta, NewMessage};
use pushmail_core::notice::Notice;

use super::mailbox::{body_key, folder_sk, message_sk};
use super::*;
use crate::mailbox::{ChangeKind, Delivery, check_batch};

impl DynamoStore {
    /// A delivery (`announce`: with its new-mail notice) or an APPEND of `messages` (at least
    /// one, at most `MAX_MESSAGES_PER_APPEND`), all or none; the first one's UID is answered,
    /// the others' follow it.
    pub(super) async fn store_messages(
        &self,
        account: &Address,
        folder: &FolderName,
        messages: &[NewMessage],
        quota_bytes: Option<u64>,
        announce: bool,
    ) -> StoreResult<Delivery> {
        check_batch(messages)?;
        let bodies = self.bodies()?;
        let size: u64 = messages.iter().map(|m| m.raw.len() as u64).sum();
        let envelopes: Vec<Envelope> = messages.iter().map(|m| Envelope::parse(&m.raw)).collect();
        let known = |owner: &Option<Account>| {
            owner
                .as_ref()
                .is_some_and(|o| messages.iter().all(|m| m.is_for(o)))
        };
        // Refusals need no body: check them before uploading.
        if !known(&self.account(account).await?) {
            return Ok(Delivery::NoSuchAccount);
        }
        if self.folder(account, folder).await?.is_none() {
            return Ok(Delivery::NoSuchFolder);
        }
        let (usage, _, _) = self.mail_state(account).await?;
        if quota_bytes.is_some_and(|quota| usage.saturating_add(size) > quota) {
            return Ok(Delivery::OverQuota);
        }
        let mut keys: Vec<String> = Vec::with_capacity(messages.len());
        for message in messages {
            let key = body_key(account);
            if let Err(error) = bodies.put_body(&key, &message.raw).await {
                for key in &keys {
                    let _ = bodies.delete_body(key).await;
                }
                return Err(error);
            }
            keys.push(key);
        }
        let pk = account_pk(account);
        let _turn = self.account_turn(account).await;
        let stored = contended("one account's mailbox", || async {
            let Some(current) = self.folder(account, folder).await? else {
                return Ok(Attempt::Done(Delivery::NoSuchFolder));
            };
            let (usage, changes, state_exists) = self.mail_state(account).await?;
            if quota_bytes.is_some_and(|quota| usage.saturating_add(size) > quota) {
                return Ok(Attempt::Done(Delivery::OverQuota));
            }
            let first_uid = current.uid_next;
            let count = messages.len() as u32;
            let Some(uid_next) = first_uid.checked_add(count) else {
                return Err(StoreError::Backend(format!("{folder}: no UIDs left")));
            };
            let last_modseq = current.highest_modseq + u64::from(count);
            let last_change = changes + u64::from(count);
            // A link changed between this read and the transaction is caught at dispatch: the
            // dispatcher sends only for the subscription that is current then.
            // The account must still be the one known: checked here and, in the
            // transaction, by its creation time (deleted and created again: another person).
            let owner = self.account(account).await?;
            if !known(&owner) {
                return Ok(Attempt::Done(Delivery::NoSuchAccount));
            }
            let link = match announce {
                true => self.link(account).await?,
                false => None,
            };
            let state_update = self
                .state_update(account, changes, state_exists)
                .update_expression("SET changes = :next, usage_bytes = :usage")
                .expression_attribute_values(":next", n(last_change))
                .expression_attribute_values(":usage", n(usage + size));
            let mut writes = vec![
                update_write(
                    Update::builder()
                        .table_name(&self.table)
                        .key("pk", s(&pk))
                        .key("sk", s(folder_sk(folder)))
                        .update_expression(
                            "SET uid_next = :uid_next, highest_modseq = :modseq \
                             ADD messages :count",
                        )
                        .condition_expression("uid_next = :uid")
                        .expression_attribute_values(":uid_next", n(uid_next))
                        .expression_attribute_values(":modseq", n(last_modseq))
                        .expression_attribute_values(":count", n(count))
                        .expression_attribute_values(":uid", n(first_uid)),
                )?,
                update_write(state_update)?,
            ];
            let mut first_notice = None;
            for (at, ((message, envelope), key)) in
                messages.iter().zip(&envelopes).zip(&keys).enumerate()
            {
                let uid = first_uid + at as u32;
                let change = changes + 1 + at as u64;
                let meta = MessageMeta {
                    uid,
                    flags: message.flags.clone(),
                    internal_date: message.internal_date,
                    size: message.raw.len() as u64,
                    modseq: current.highest_modseq + 1 + at as u64,
                    envelope: envelope.clone(),
                };
                let meta_json = serde_json::to_string(&meta)
                    .map_err(|e| StoreError::Corrupt(format!("message metadata: {e}")))?;
                writes.push(put_write(
                    Put::builder()
                        .table_name(&self.table)
                        .item("pk", s(&pk))
                        .item("sk", s(message_sk(folder, uid)))
                        .item("meta", s(meta_json))
                        .item("body_key", s(key))
                        .condition_expression("attribute_not_exists(pk)"),
                )?);
                writes.push(put_write(self.change_put(
                    account,
                    change,
                    folder,
                    uid,
                    ChangeKind::Added,
                ))?);
                let notice = match owner.as_ref().filter(|_| announce) {
                    Some(owner) => Notice::for_delivery(
                        owner,
                        link.as_ref(),
                        folder,
                        uid,
                        current.uid_validity,
                        change,
                        envelope,
                        message.internal_date,
                    ),
                    None => None,
                };
                if let Some(notice) = notice {
                    writes.push(put_write(super::notices::record(&self.table, &notice)?)?);
                    first_notice.get_or_insert(notice);
                }
            }
            if let Some(first) = &first_notice {
                writes.push(self.queue_recorded(first)?);
            }
            if let Some(owner) = &owner {
                writes.push(self.owner_unchanged(owner)?);
            }
            Ok(if self.transact(writes).await? {
                self.logged_changes(account, changes + 1, last_change).await;
                Attempt::Done(Delivery::Stored {
                    uid: first_uid,
                    uid_validity: current.uid_validity,
                    modseq: last_modseq,
                    change: last_change,
                    noticed: first_notice.is_some(),
                })
            } else {
                Attempt::Raced
            })
        })
        .await;
        if !matches!(stored, Ok(Delivery::Stored { .. })) {
            // Refused after all (a racing delivery filled the quota), or failed: the bodies
            // are not kept.
            for key in &keys {
                let _ = bodies.delete_body(key).await;
            }
        }
        stored
    }
}

impl DynamoStore {
    /// A transaction's check that `owner` is still the account at its address: not deleted,
    /// not deleted and created again (its creation time unchanged).
    fn owner_unchanged(&self, owner: &Account) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(account_pk(&owner.address)))
            .key("sk", s("ACCOUNT"))
            .condition_expression("created_at = :created")
            .expression_attribute_values(":created", time(owner.created_at));
        let check = build(check.build())?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}
