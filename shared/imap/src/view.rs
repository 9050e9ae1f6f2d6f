//! The selected folder as one session sees it: its UIDs (from which sequence numbers come), the
//! change counter it has caught up with, the keywords and `\Recent` messages it was told of.
//! SELECT makes it (`select.rs`), every command's catch-up keeps it in step.

use std::collections::HashMap;

use pushmail_core::folder::FolderName;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::keywords;
use crate::recent::Recent;
use crate::reply::Result;
use crate::uids::UidMap;
use crate::wire::Wire;

/// The selected folder as this session sees it.
pub(crate) struct Selected {
    pub folder: FolderName,
    /// The folder's UIDVALIDITY when selected: with a UID, names one message's bytes for good.
    pub uid_validity: u32,
    /// EXAMINE: nothing in the folder changes through this view.
    pub read_only: bool,
    /// UIDs in order: message sequence number n is the n-th.
    pub uids: UidMap,
    /// The account's change counter this view has caught up with.
    pub seen_change: u64,
    /// Flags this session set itself and already told its client, until the change log
    /// brings them back: they are not told again.
    pub own_flags: HashMap<u32, Vec<String>>,
    /// The keywords the client was told of (FLAGS), kept so that a new one is told first.
    pub keywords: keywords::Keywords,
    /// The messages recent to this session.
    pub recent: Recent,
}

impl Selected {
    /// The sequence number of a UID in the view.
    pub fn sequence_of(&self, uid: u32) -> Option<u32> {
        self.uids.sequence_of(uid)
    }

    /// Before a FETCH with `flags` goes out: tells the client the keywords among them it does
    /// not know yet (RFC 3501 §7.2.6).
    pub async fn announce_keywords<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        wire: &mut Wire<S>,
        flags: &[String],
    ) -> Result<()> {
        if self.keywords.learn(flags) {
            keywords::tell(wire, &self.keywords, self.read_only).await?;
        }
        Ok(())
    }
}

/// Whether untagged EXPUNGE may be sent now: never during FETCH, STORE or SEARCH by sequence
/// number (RFC 3501 §7.4.1), since the client's numbers would shift under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expunges {
    Report,
    Hold,
}
