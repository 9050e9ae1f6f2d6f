//! QRESYNC (RFC 7162 §3.2): a client that kept a folder's state learns in one SELECT what
//! changed since (`* VANISHED (EARLIER)` for the messages gone, FETCH for the flags changed),
//! and hears of removals as `* VANISHED` instead of one `* n EXPUNGE` each. ENABLE, which turns
//! it (and CONDSTORE) on, is here too.
//!
//! The store keeps no MODSEQ of a removal, only that it happened; so the UIDs told vanished are
//! every UID of the client's set that is not in the folder (RFC 7162 §3.2.5.1 allows a server
//! that cannot tell when a message went to send more than the removals since the client's
//! MODSEQ). They are worked out a run at a time (`UidMap::absent_in`): a set of `1:*` over a
//! large folder costs its gaps, not its UIDs.

use std::num::NonZeroU32;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, io, ok};
use crate::state::{Imap, Session};
use crate::uids::{Ranges, run_set};
use crate::wire::Wire;

/// What a client knew of a folder (SELECT's QRESYNC parameter).
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub uid_validity: u32,
    pub modseq: u64,
    /// The UIDs it knew of; all of them when it did not say.
    pub uids: Option<SequenceSet>,
}

impl Known {
    /// SELECT/EXAMINE's QRESYNC parameter, if given.
    pub fn of(parameters: &[SelectParameter]) -> Option<Self> {
        parameters.iter().find_map(|parameter| match parameter {
            SelectParameter::QResync {
                uid_validity,
                mod_sequence_value,
                known_uids,
                // Only a hint for servers that keep no MODSEQ of removals: this one sends every
                // gap of the client's set instead.
                seq_match_data: _,
            } => Some(Self {
                uid_validity: uid_validity.get(),
                modseq: mod_sequence_value.get(),
                uids: known_uids.clone(),
            }),
            SelectParameter::CondStore => None,
        })
    }
}

/// Every UID, `1:*`.
fn all_uids() -> SequenceSet {
    SequenceSet(Vec1::from(Sequence::Range(
        SeqOrUid::Value(NonZeroU32::MIN),
        SeqOrUid::Asterisk,
    )))
}

impl Imap {
    /// ENABLE (RFC 5161): CONDSTORE and QRESYNC (which implies CONDSTORE) can be; whatever
    /// else is asked is left off the ENABLED answer.
    pub(crate) async fn enable<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
        asked: &[CapabilityEnable<'_>],
    ) -> Result<()> {
        let mut enabled = String::from("* ENABLED");
        for capability in asked {
            match capability {
                CapabilityEnable::CondStore => {
                    session.condstore = true;
                    enabled.push_str(" CONDSTORE");
                }
                other if other.to_string().eq_ignore_ascii_case("QRESYNC") => {
                    session.condstore = true;
                    session.qresync = true;
                    enabled.push_str(" QRESYNC");
                }
                _ => {}
            }
        }
        enabled.push_str("\r\n");
        wire.send_raw(enabled.as_bytes()).await?;
        ok(wire, tag, "ENABLE done").await
    }

    /// After SELECT with QRESYNC, before its tagged answer: if the folder is the one the client
    /// knew (same UIDVALIDITY), the UIDs it knew that are gone, then the flags of every message
    /// changed since its MODSEQ.
    pub(crate) async fn resync<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        known: &Known,
        uid_validity: u32,
        uid_next: u32,
    ) -> Result<()> {
        if known.uid_validity != uid_validity {
            return Ok(());
        }
        let uids = known.uids.clone().unwrap_or_else(all_uids);
        self.tell_vanished_earlier(wire, session, &uids, uid_next)
            .await?;
        let names = MacroOrMessageDataItemNames::MessageDataItemNames(vec![
            MessageDataItemName::Uid,
            MessageDataItemName::Flags,
            MessageDataItemName::ModSeq,
        ]);
        self.fetch(
            wire,
            session,
            account,
            &all_uids(),
            names,
            true,
            Some(known.modseq),
        )
        .await
    }

    /// `* VANISHED (EARLIER)` with the UIDs of `set` below `uid_next` that the selected folder
    /// does not hold (nothing if there are none).
    pub(crate) async fn tell_vanished_earlier<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        set: &SequenceSet,
        uid_next: u32,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return Ok(());
        };
        let largest = uid_next.saturating_sub(1);
        if largest == 0 {
            return Ok(());
        }
        let gone = selected
            .uids
            .absent_in(&Ranges::new(set, largest).up_to(largest));
        if gone.is_empty() {
            return Ok(());
        }
        let line = format!("* VANISHED (EARLIER) {}\r\n", run_set(&gone));
        wire.send_raw(line.as_bytes()).await
    }

    /// UID FETCH's VANISHED modifier (RFC 7162 §3.2.6): the set's UIDs that are gone, before
    /// the messages changed since CHANGEDSINCE.
    pub(crate) async fn fetch_vanished<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        set: &SequenceSet,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return Ok(());
        };
        let folder = self
            .store
            .folder(account, &selected.folder)
            .await
            .map_err(io)?;
        let uid_next = folder.map_or(0, |folder| folder.uid_next);
        self.tell_vanished_earlier(wire, session, set, uid_next)
            .await
    }
}
