//! What an account leaves behind when it goes: everything in its partition but the account and
//! link items (folders, messages, their S3 bodies, the change log, mailbox state, notice
//! status, kept mail) and its pending notices. Run after the account is deleted, again by a
//! delete of the address that finds no account, and before an address is created anew, so a
//! purge a crash or a request's time limit cut short is finished before anyone can own the
//! address again; it goes a page at a time, so each run keeps what it did. Also the change log's part older than its window, dropped as
//! writes add to it.

use aws_sdk_dynamodb::types::{ConditionCheck, DeleteRequest, TransactWriteItem, WriteRequest};

use super::*;

/// BatchWriteItem's own limit.
const BATCH: usize = 25;

/// Deletes in one of a purge's transactions: TransactWriteItems' limit of 100, less the check
/// that the address has no account.
const TRANSACTED: usize = 99;

/// BatchWriteItem requests or transactions of a purge in flight at once.
const BATCHES_AT_ONCE: usize = 8;

impl DynamoStore {
    /// A page at a time, each page's bodies before its items, so a purge cut short (a crash, a
    /// request's time running out) keeps what it did and the next one goes on from there, in
    /// memory a page at most.
    pub(super) async fn purge_mailbox(&self, address: &Address) -> StoreResult<()> {
        let pk = account_pk(address);
        let doing = format!("purging {address}");
        self.purge_pages(
            address,
            self.partition_query(&pk, None).consistent_read(true),
            |item| {
                let sk = get_s(item, "sk")?;
                // The account and its link are the account's own to delete (conditionally).
                // The UIDVALIDITY floor is kept: a number, no one's data, and what keeps a new
                // owner's folders from reusing the last owner's UIDVALIDITYs.
                Ok(sk != "ACCOUNT" && sk != "LINK" && sk != super::mailbox::UID_VALIDITY_SK)
            },
            &doing,
        )
        .await?;
        self.purge_pages(
            address,
            self.partition_query("NOTICE", Some(&format!("{address}\u{1}")))
                .consistent_read(true),
            |_| Ok(true),
            &doing,
        )
        .await
    }

    /// Deletes the items `query` finds that `wanted` picks, page by page, with the S3 bodies
    /// they name first: never a body that nothing names. Stops when `address` has an account
    /// again: created meanwhile, after a purge of its own, it owns what is there now.
    async fn purge_pages(
        &self,
        address: &Address,
        query: QueryFluentBuilder,
        wanted: impl Fn(&Item) -> StoreResult<bool>,
        doing: &str,
    ) -> StoreResult<()> {
        let mut pages = Pages::of(query);
        while let Some(output) = pages.next().await? {
            // After the read: an account created before it is seen here, and one created after
            // it finds only what its own purge removes anyway on this page.
            if self.account(address).await?.is_some() {
                return Ok(());
            }
            let (mut keys, mut bodies) = (Vec::new(), Vec::new());
            for item in output.items.unwrap_or_default() {
                if !wanted(&item)? {
                    continue;
                }
                if let Some(AttributeValue::S(body)) = item.get("body_key") {
                    bodies.push(body.clone());
                }
                keys.push((
                    get_s(&item, "pk")?.to_owned(),
                    get_s(&item, "sk")?.to_owned(),
                ));
            }
            if !bodies.is_empty() {
                self.bodies()?.delete_bodies(&bodies).await?;
            }
            if !self.delete_unowned(address, &keys, doing).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Deletes the items of these keys while `address` has no account, each chunk of
    /// [`TRANSACTED`] in a transaction with a check of that; [`BATCHES_AT_ONCE`] at once. False
    /// when an account was created meanwhile: the page was read before it, and a new owner's
    /// items can have the same keys as the last one's (`FOLDER#INBOX`, the mailbox state, a
    /// change's counter), so only a transaction with the check can tell the keys still name
    /// the last owner's items.
    async fn delete_unowned(
        &self,
        address: &Address,
        keys: &[(String, String)],
        doing: &str,
    ) -> StoreResult<bool> {
        in_chunks(keys, TRANSACTED, |chunk| {
            self.delete_chunk_unowned(address, chunk, doing)
        })
        .await
    }

    /// One transaction of [`delete_unowned`](Self::delete_unowned): tried again when a
    /// concurrent write to one of its items (another purge of the same address) cancelled it.
    async fn delete_chunk_unowned(
        &self,
        address: &Address,
        chunk: &[(String, String)],
        doing: &str,
    ) -> StoreResult<bool> {
        let mut writes = vec![
            TransactWriteItem::builder()
                .condition_check(build(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .key("pk", s(account_pk(address)))
                        .key("sk", s("ACCOUNT"))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build(),
        ];
        for (pk, sk) in chunk {
            writes.push(delete_write(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s(sk)),
            )?);
        }
        contended(doing, || {
            let writes = writes.clone();
            async move {
                if self.transact(writes).await? {
                    return Ok(Attempt::Done(true));
                }
                Ok(match self.account(address).await? {
                    Some(_) => Attempt::Done(false),
                    None => Attempt::Raced,
                })
            }
        })
        .await
    }

    /// After a write that logged the account's changes `first..=last`: drops the part of the
    /// log older than the window when this write's turn comes. A failure is only logged: the
    /// write is done, and the next turn drops what this one left.
    pub(super) async fn logged_changes(&self, account: &Address, first: u64, last: u64) {
        if let Some(through) = self.change_window.drop_through(first, last)
            && let Err(error) = self.drop_changes(account, through).await
        {
            tracing::warn!(%error, "old changes not dropped");
        }
    }

    /// Drops the account's changes numbered `through` and below: the part of its change log
    /// older than the window ([`crate::ChangeWindow`]). Read from the log's oldest key, so a
    /// drop that failed before is made good here.
    async fn drop_changes(&self, account: &Address, through: u64) -> StoreResult<()> {
        let pk = account_pk(account);
        let last = super::mailbox::change_sk(through);
        let mut keys = Vec::new();
        each_item(
            self.partition_query(&pk, Some("CHANGE#"))
                .projection_expression("sk"),
            |item| {
                let sk = get_s(&item, "sk")?;
                if sk > last.as_str() {
                    return Ok(false);
                }
                keys.push((pk.clone(), sk.to_owned()));
                Ok(true)
            },
        )
        .await?;
        self.delete_keys(&keys, &format!("dropping {account}'s old changes"))
            .await
    }

    /// Deletes the items of these keys, [`BATCH`] a request and [`BATCHES_AT_ONCE`] requests at
    /// once; `doing` names the work in the error when some are still left.
    async fn delete_keys(&self, keys: &[(String, String)], doing: &str) -> StoreResult<()> {
        let deleted = |chunk| async move { self.delete_batch(chunk, doing).await.map(|()| true) };
        in_chunks(keys, BATCH, deleted).await.map(|_| ())
    }

    /// One BatchWriteItem of at most [`BATCH`] deletes, its unprocessed items (throttling) sent
    /// again a bounded number of times.
    async fn delete_batch(&self, chunk: &[(String, String)], doing: &str) -> StoreResult<()> {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|(pk, sk)| {
                build(
                    DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build(),
                )
                .map(|delete| WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<StoreResult<_>>()?;
        for attempt in 0..RACE_RETRIES {
            if requests.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(backend)?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
        }
        if !requests.is_empty() {
            return Err(StoreError::Backend(format!(
                "{doing}: {} items left unprocessed",
                requests.len()
            )));
        }
        Ok(())
    }
}

/// Runs `each` over `keys` in chunks of `size`, [`BATCHES_AT_ONCE`] chunks at once and a group
/// of them after another; false, and no group after it, once a chunk says false.
async fn in_chunks<'k, Each, Done>(
    keys: &'k [(String, String)],
    size: usize,
    each: Each,
) -> StoreResult<bool>
where
    Each: Fn(&'k [(String, String)]) -> Done,
    Done: std::future::Future<Output = StoreResult<bool>>,
{
    for group in keys.chunks(size * BATCHES_AT_ONCE) {
        let done = futures_util::future::try_join_all(group.chunks(size).map(&each)).await?;
        if done.contains(&false) {
            return Ok(false);
        }
    }
    Ok(true)
}
