//! EXPUNGE, UID EXPUNGE (UIDPLUS) and CLOSE's silent expunge. The store removes only what is
//! still `\Deleted` when it writes; what was removed reaches this session (and every other one
//! with the folder selected) through the change log, as `* n EXPUNGE`.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::StatusKind;
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::fetch::targets;
use crate::reply::{Result, io, no_or_bad, ok};
use crate::state::{Imap, Session};
use crate::view::Expunges;
use crate::wire::Wire;

impl Imap {
    /// EXPUNGE (`only`: None) or UID EXPUNGE of a set.
    pub(crate) async fn expunge<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        only: Option<&SequenceSet>,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await;
        };
        if selected.read_only {
            return no_or_bad(
                wire,
                tag,
                StatusKind::No,
                "The folder is read-only (EXAMINE)",
            )
            .await;
        }
        let uids: Vec<u32> = match only {
            Some(set) => targets(selected, set, true)
                .into_iter()
                .map(|(_, uid)| uid)
                .collect(),
            None => selected.uids.to_vec(),
        };
        let folder = selected.folder.clone();
        self.store
            .expunge(account, &folder, &uids, true)
            .await
            .map_err(io)?;
        self.report_changes(wire, session, Expunges::Report).await?;
        ok(wire, tag, "EXPUNGE done").await
    }

    /// CLOSE: `\Deleted` messages go, without EXPUNGE responses, and the folder is left.
    pub(crate) async fn close_folder<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
    ) -> Result<()> {
        if let Some(selected) = session.selected.take()
            && !selected.read_only
        {
            self.store
                .expunge(account, &selected.folder, &selected.uids.to_vec(), true)
                .await
                .map_err(io)?;
        }
        ok(wire, tag, "CLOSE done").await
    }
}
