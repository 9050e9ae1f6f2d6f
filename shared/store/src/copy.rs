//! COPY (and MOVE's copy), written once for both backends over their APPEND: the messages are
//! read, then stored in writes of up to [`MAX_MESSAGES_PER_APPEND`] (and
//! [`MOST_BYTES_PER_WRITE`] of mail), each one durable commit. One write a message made a COPY
//! of twenty messages wait for twenty flushes of the disk, one after another.

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{MAX_MESSAGES_PER_APPEND, NewMessage};
use pushmail_core::types::Address;

use crate::StoreResult;
use crate::mailbox::{Copied, Delivery, MailboxStore};

/// The most bytes of mail one write of a copy holds (a message larger than it is written
/// alone): what the copy holds in memory at once.
const MOST_BYTES_PER_WRITE: u64 = 32 << 20;

pub(crate) async fn copy_messages<S: MailboxStore + ?Sized>(
    store: &S,
    account: &Address,
    from: &FolderName,
    uids: &[u32],
    to: &FolderName,
    quota_bytes: Option<u64>,
) -> StoreResult<Copied> {
    let Some(target) = store.folder(account, to).await? else {
        return Ok(Copied::NoSuchFolder);
    };
    let mut wanted: Vec<u32> = uids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut metas = Vec::with_capacity(wanted.len());
    for &uid in wanted.iter().filter(|&&uid| uid > 0) {
        if let Some(meta) = store.messages(account, from, uid - 1, 1).await?.pop()
            && meta.uid == uid
        {
            metas.push(meta);
        }
    }
    let total: u64 = metas.iter().map(|m| m.size).sum();
    let usage = store.mailbox_usage(account).await?;
    if quota_bytes.is_some_and(|quota| usage.saturating_add(total) > quota) {
        return Ok(Copied::OverQuota);
    }
    let mut copied: Vec<(u32, u32)> = Vec::with_capacity(metas.len());
    let mut failure = None;
    let mut metas = metas.into_iter().peekable();
    while metas.peek().is_some() {
        let (mut sources, mut messages, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        while let Some(meta) = metas.next_if(|meta| {
            messages.is_empty()
                || (messages.len() < MAX_MESSAGES_PER_APPEND
                    && bytes.saturating_add(meta.size) <= MOST_BYTES_PER_WRITE)
        }) {
            let Some(raw) = store.message_body(account, from, meta.uid).await? else {
                continue; // expunged meanwhile
            };
            bytes = bytes.saturating_add(raw.len() as u64);
            sources.push(meta.uid);
            messages.push(NewMessage {
                raw,
                flags: meta.flags,
                internal_date: meta.internal_date,
                // The source was read from this account's own mailbox, which a deletion
                // purges: a copy of nothing.
                owner_known_at: None,
            });
        }
        if messages.is_empty() {
            continue;
        }
        match store.append_all(account, to, &messages, quota_bytes).await {
            Ok(Delivery::Stored { uid, .. }) => {
                copied.extend(sources.into_iter().zip(uid..));
            }
            Ok(refused) => {
                failure = Some(Ok(refused));
                break;
            }
            Err(error) => {
                failure = Some(Err(error));
                break;
            }
        }
    }
    if let Some(failure) = failure {
        let made: Vec<u32> = copied.iter().map(|(_, new)| *new).collect();
        store.expunge(account, to, &made, false).await?;
        return match failure? {
            Delivery::OverQuota => Ok(Copied::OverQuota),
            _ => Ok(Copied::NoSuchFolder),
        };
    }
    Ok(Copied::Copied {
        uid_validity: target.uid_validity,
        uids: copied,
    })
}
