//! The selected folder: SELECT/EXAMINE, CLOSE/UNSELECT, and keeping the session's view (its
//! UIDs, from which message sequence numbers come) in step with the change log: new messages
//! as `* N EXISTS`, removed ones as `* n EXPUNGE`, other sessions' flag changes as FETCH.

use std::collections::{BTreeSet, HashMap};
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;
use pushmail_core::mailbox::{Flagged, Folder};
use pushmail_core::metric_names::CHANGE_LOG_LOST;
use pushmail_core::types::Address;
use pushmail_store::{ChangeKind, ChangesAfter, MessagePages};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::fetch::MetaWindow;
use crate::fetch_response::flag_items;
use crate::keywords;
use crate::qresync::Known;
use crate::recent::Recent;
use crate::reply::{Result, io, no_or_bad, send_status};
use crate::state::{Imap, Session};
use crate::uids::{UidMap, uid_set};
use crate::view::{Expunges, Selected};
use crate::wire::Wire;

/// How SELECT (read-write) or EXAMINE (read-only) opens a folder: with what the client knew
/// of it, for QRESYNC.
pub(crate) struct Opening {
    pub read_only: bool,
    pub known: Option<Known>,
}

impl Opening {
    pub fn new(read_only: bool, parameters: &[SelectParameter]) -> Self {
        Self {
            read_only,
            known: Known::of(parameters),
        }
    }
}

impl Imap {
    pub(crate) async fn select<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        Opening { read_only, known }: Opening,
    ) -> Result<()> {
        if known.is_some() && !session.qresync {
            let text = "QRESYNC is not enabled (ENABLE QRESYNC first)";
            return no_or_bad(wire, tag, StatusKind::Bad, text).await;
        }
        // RFC 7162 §3.2.11: the client learns where the old folder's responses end.
        if session.selected.take().is_some() {
            wire.send_raw(b"* OK [CLOSED] Previous folder closed\r\n")
                .await?;
        }
        let folder = match Self::resolve(session, mailbox) {
            Some(name) => self.store.folder(account, &name).await.map_err(io)?,
            None => None,
        };
        let Some(folder) = folder else {
            return no_or_bad(wire, tag, StatusKind::No, "[NONEXISTENT] No such folder").await;
        };
        // The change counter first: a change between the two reads is reported again (and
        // found already known), never missed.
        let seen_change = self.store.latest_change(account).await.map_err(io)?;
        // The UIDs and the keywords the messages carry, in one walk of the folder.
        let (mut uids, mut keywords, mut first_unseen) =
            (Vec::new(), keywords::Keywords::default(), None);
        let mut pages = MessagePages::new(self.store.as_ref(), account, &folder.name);
        while let Some(page) = pages.next_states().await.map_err(io)? {
            for meta in page {
                keywords.learn(&meta.flags);
                uids.push(meta.uid);
                if first_unseen.is_none() && !meta.is_seen() {
                    first_unseen = u32::try_from(uids.len()).ok();
                }
            }
        }
        let uids = UidMap::from_sorted(uids);
        // A read-write view takes the messages no session was told of yet as its recent ones;
        // a read-only one shows them so without taking them (RFC 3501 §6.3.2).
        let mut recent = Recent::default();
        let last = uids.last().unwrap_or(0);
        if folder.is_unclaimed_recent(last) {
            recent.add(if read_only {
                Folder::recent_claimed(folder.recent_up_to, last)
            } else {
                self.store
                    .claim_recent(account, &folder.name, last)
                    .await
                    .map_err(io)?
            });
        }
        keywords::tell(wire, &keywords, read_only).await?;
        wire.send(&Response::Data(Data::Exists(uids.len()))).await?;
        wire.send(&Response::Data(Data::Recent(recent.count_in(&uids))))
            .await?;
        let mut codes = Vec::new();
        // The first message not yet read, by sequence number (RFC 3501 §6.3.1).
        if let Some(unseen) = first_unseen.and_then(NonZeroU32::new) {
            codes.push((Code::Unseen(unseen), "First unseen"));
        }
        if let Some(validity) = NonZeroU32::new(folder.uid_validity) {
            codes.push((Code::UidValidity(validity), "UIDs valid"));
        }
        if let Some(next) = NonZeroU32::new(folder.uid_next) {
            codes.push((Code::UidNext(next), "Predicted next UID"));
        }
        for (code, text) in codes {
            send_status(wire, None, StatusKind::Ok, Some(code), text).await?;
        }
        // CONDSTORE (RFC 7162 §3.1.2.1): every SELECT says it, enabled or not.
        wire.send_raw(
            format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", folder.highest_modseq).as_bytes(),
        )
        .await?;
        let (uid_validity, uid_next) = (folder.uid_validity, folder.uid_next);
        session.selected = Some(Selected {
            folder: folder.name,
            uid_validity,
            read_only,
            uids,
            seen_change,
            own_flags: HashMap::new(),
            keywords,
            recent,
        });
        if let Some(known) = &known {
            self.resync(wire, session, account, known, uid_validity, uid_next)
                .await?;
        }
        let (code, text) = if read_only {
            (Code::ReadOnly, "EXAMINE done")
        } else {
            (Code::ReadWrite, "SELECT done")
        };
        send_status(wire, Some(tag), StatusKind::Ok, Some(code), text).await
    }

    /// CONDSTORE turned on by a command that uses it (RFC 7162 §3.1): with a folder selected,
    /// the client is told its HIGHESTMODSEQ, as SELECT would have told it.
    pub(crate) async fn enable_condstore<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
    ) -> Result<()> {
        if session.condstore {
            return Ok(());
        }
        session.condstore = true;
        let (Some(account), Some(selected)) = (&session.user, &session.selected) else {
            return Ok(());
        };
        if let Some(folder) = self
            .store
            .folder(account, &selected.folder)
            .await
            .map_err(io)?
        {
            let line = format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", folder.highest_modseq);
            wire.send_raw(line.as_bytes()).await?;
        }
        Ok(())
    }

    /// Brings the view up to date with the change log: removed messages as `* n EXPUNGE`
    /// (unless held: the log is then read only up to the first one), flag changes as FETCH,
    /// new messages as `* N EXISTS`. A view the log no longer reaches back to is brought up
    /// to date from the folder itself (`lost_log.rs`).
    pub(crate) async fn report_changes<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        expunges: Expunges,
    ) -> Result<()> {
        let (condstore, qresync) = (session.condstore, session.qresync);
        let (Some(user), Some(selected)) = (&session.user, &mut session.selected) else {
            return Ok(());
        };
        let account = user.clone();
        let known = selected.uids.last().unwrap_or(0);
        let mut added: BTreeSet<u32> = BTreeSet::new();
        let mut flagged: BTreeSet<u32> = BTreeSet::new();
        // With QRESYNC, removals are told together as one `* VANISHED`.
        let mut vanished: Vec<u32> = Vec::new();
        'log: loop {
            let changes = match self
                .store
                .changes_after(&account, selected.seen_change, 1000)
                .await
                .map_err(io)?
            {
                ChangesAfter::Read(changes) => changes,
                // Fallen out of the log's window: the folder itself, read again.
                ChangesAfter::Lost if expunges == Expunges::Report => {
                    metrics::counter!(CHANGE_LOG_LOST, "kind" => "selected").increment(1);
                    self.folder_as_changes(&account, selected).await?
                }
                // Until a command after which removals may be told.
                ChangesAfter::Lost => break,
            };
            if changes.is_empty() {
                break;
            }
            for change in changes {
                if change.folder == selected.folder {
                    match change.kind {
                        ChangeKind::Added if change.uid > known => {
                            added.insert(change.uid);
                        }
                        ChangeKind::Added => {}
                        ChangeKind::Flags => {
                            flagged.insert(change.uid);
                        }
                        ChangeKind::Expunged => {
                            if added.remove(&change.uid) {
                                // Came and went before this view heard of it.
                            } else if let Some(seq) = selected.sequence_of(change.uid) {
                                if expunges == Expunges::Hold {
                                    break 'log;
                                }
                                if qresync {
                                    vanished.push(change.uid);
                                } else {
                                    wire.send(&Response::Data(Data::Expunge(
                                        NonZeroU32::new(seq).expect("sequence numbers start at 1"),
                                    )))
                                    .await?;
                                }
                                selected.uids.remove_sequence(seq);
                            }
                            flagged.remove(&change.uid);
                        }
                    }
                }
                selected.seen_change = change.counter;
            }
        }
        if !vanished.is_empty() {
            vanished.sort_unstable();
            let line = format!("* VANISHED {}\r\n", uid_set(&vanished));
            wire.send_raw(line.as_bytes()).await?;
        }
        // Flags of messages in the view, as they are now: their states read a window at a
        // time (a STORE of fifty messages is one read, not fifty).
        let flagged: Vec<(u32, u32)> = flagged
            .into_iter()
            .filter_map(|uid| selected.sequence_of(uid).map(|seq| (seq, uid)))
            .collect();
        let folder = selected.folder.clone();
        let mut states = MetaWindow::default();
        for (at, &(seq, uid)) in flagged.iter().enumerate() {
            let remaining = flagged.get(at..).unwrap_or_default();
            let meta = states.find(self, &account, &folder, uid, remaining).await?;
            let told = selected.own_flags.remove(&uid);
            let (Some(meta), Some(seq), Some(uid)) =
                (meta, NonZeroU32::new(seq), NonZeroU32::new(uid))
            else {
                continue;
            };
            if told.as_ref() == Some(&meta.flags) {
                continue;
            }
            selected.announce_keywords(wire, &meta.flags).await?;
            let recent = selected.recent.contains(uid.get());
            let mut items = vec![flag_items(&meta.flags, recent), MessageDataItem::Uid(uid)];
            if condstore && let Some(modseq) = NonZeroU64::new(meta.modseq) {
                items.push(MessageDataItem::ModSeq(modseq));
            }
            if let Ok(items) = Vec1::try_from(items) {
                wire.send(&Response::Data(Data::Fetch { seq, items }))
                    .await?;
            }
        }
        let new_uids: Vec<u32> = added.iter().copied().collect();
        if let Some(&newest) = added.last() {
            for uid in added {
                selected.uids.push(uid);
            }
            let exists = selected.uids.len();
            wire.send(&Response::Data(Data::Exists(exists))).await?;
            // The first session told of new messages has them as recent (RFC 3501 §7.3.2);
            // one that claimed them with its APPEND has nothing left to claim.
            if !selected.read_only && !selected.recent.contains(newest) {
                let claimed = self
                    .store
                    .claim_recent(&account, &selected.folder, newest)
                    .await
                    .map_err(io)?;
                selected.recent.add(claimed);
            }
            let recent = selected.recent.count_in(&selected.uids);
            wire.send(&Response::Data(Data::Recent(recent))).await?;
        }
        // NOTIFY's MessageNew with FETCH items: the new messages' items after EXISTS.
        let fetch = session
            .watch
            .as_ref()
            .and_then(|watch| watch.selected_fetch())
            .and_then(|group| group.events.fetch.clone());
        if let Some(names) = fetch
            && !new_uids.is_empty()
            && let Ok(set) = SequenceSet::try_from(uid_set(&new_uids).as_str())
        {
            Box::pin(self.fetch(wire, session, &account, &set, names, true, None)).await?;
        }
        Ok(())
    }
}
