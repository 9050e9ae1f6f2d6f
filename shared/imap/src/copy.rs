//! COPY, MOVE (RFC 6851) and their UID forms, answered with UIDPLUS's COPYUID. A copy is all
//! or none (`MailboxStore::copy`), within the account's quota; MOVE copies, then expunges the
//! originals, which this session and others learn from the change log.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::StatusKind;
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::types::Address;
use pushmail_store::Copied;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::fetch::targets;
use crate::reply::{Result, io, no_or_bad, ok, tagged_raw};
use crate::state::{Imap, Session};
use crate::uids::uid_set;
use crate::view::Expunges;
use crate::wire::Wire;

impl Imap {
    /// The account's quota now (an admin may have changed it since LOGIN).
    pub(crate) async fn quota(&self, account: &Address) -> Result<Option<u64>> {
        Ok(self
            .store
            .account(account)
            .await
            .map_err(io)?
            .and_then(|account| account.quota_bytes))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn copy<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        by_uid: bool,
        moving: bool,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await;
        };
        if moving && selected.read_only {
            return no_or_bad(
                wire,
                tag,
                StatusKind::No,
                "The folder is read-only (EXAMINE)",
            )
            .await;
        }
        let Some(to) = Self::resolve(session, mailbox) else {
            return no_or_bad(wire, tag, StatusKind::No, "[TRYCREATE] No such folder").await;
        };
        let from = selected.folder.clone();
        let uids: Vec<u32> = targets(selected, set, by_uid)
            .into_iter()
            .map(|(_, uid)| uid)
            .collect();
        // A MOVE stays within the account: what it adds, the expunge after it takes away, so
        // it is not held to the quota as a COPY is (a mailbox near its quota can still file).
        let quota = match moving {
            true => None,
            false => self.quota(account).await?,
        };
        let copied = self
            .store
            .copy(account, &from, &uids, &to, quota)
            .await
            .map_err(io)?;
        let (uid_validity, pairs) = match copied {
            Copied::Copied { uid_validity, uids } => (uid_validity, uids),
            Copied::NoSuchFolder => {
                return no_or_bad(wire, tag, StatusKind::No, "[TRYCREATE] No such folder").await;
            }
            Copied::OverQuota => {
                return no_or_bad(wire, tag, StatusKind::No, "[OVERQUOTA] Over the quota").await;
            }
        };
        let code = if pairs.is_empty() {
            String::new()
        } else {
            let (old, new): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
            format!(
                "[COPYUID {uid_validity} {} {}] ",
                uid_set(&old),
                uid_set(&new)
            )
        };
        if !moving {
            // New mail in the selected folder (a copy into itself) shows as EXISTS.
            self.report_changes(wire, session, Expunges::Report).await?;
            return tagged_raw(wire, &tag, "OK", &format!("{code}COPY done")).await;
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs.
        wire.send_raw(format!("* OK {code}Moved\r\n").as_bytes())
            .await?;
        let moved: Vec<u32> = pairs.iter().map(|(old, _)| *old).collect();
        self.store
            .expunge(account, &from, &moved, false)
            .await
            .map_err(io)?;
        self.report_changes(wire, session, Expunges::Report).await?;
        ok(wire, tag, "MOVE done").await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_sets_are_runs() {
        assert_eq!(super::uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::uid_set(&[4]), "4");
    }
}
