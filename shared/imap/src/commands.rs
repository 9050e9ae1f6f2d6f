//! The commands of the authenticated and selected states, each handed to its group's file:
//! `list.rs`, `mailboxes.rs`, `select.rs`, `fetch.rs`, `store.rs`, `search.rs`, `copy.rs`,
//! `expunge.rs`, `append.rs`, `idle.rs`. After a command in the selected state the view
//! catches up with the change log before the tagged answer.

use imap_codec::imap_types::command::{CommandBody, FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::StatusKind;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::append::Upload;
use crate::list_request::ListRequest;
use crate::reply::{Result, no_or_bad, ok, tagged_raw};
use crate::select::Opening;
use crate::state::{Imap, Needs, Next, Session};
use crate::store::Stored;
use crate::uids::uid_set;
use crate::view::Expunges;
use crate::wire::{Extended, Wire};

impl Imap {
    pub(crate) async fn authenticated<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Result<Next> {
        // `Session::refusal` let only a logged-in session's command through.
        let Some(account) = session.user.clone() else {
            return Ok(Next::Logout);
        };
        let account = &account;
        // Commands that may change messages: other sessions (here, and in other processes
        // through the bridge) are hinted to look. (A FETCH that marks a message read hints
        // on its own.)
        let writes = matches!(
            body,
            CommandBody::Append { .. }
                | CommandBody::Store { .. }
                | CommandBody::Copy { .. }
                | CommandBody::Move { .. }
                | CommandBody::Expunge
                | CommandBody::ExpungeUid { .. }
                | CommandBody::Close
                | CommandBody::Create { .. }
                | CommandBody::Delete { .. }
                | CommandBody::Rename { .. }
                | CommandBody::Subscribe { .. }
                | CommandBody::Unsubscribe { .. }
        );
        let next = self.dispatch(wire, session, account, tag, body).await?;
        if writes {
            self.hints.changed(account);
        }
        Ok(next)
    }

    /// The commands imap-codec does not read (MULTIAPPEND, LIST-EXTENDED, NOTIFY), each for a
    /// logged-in session.
    pub(crate) async fn extended<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
        command: Extended,
    ) -> Result<Next> {
        let Some(account) = session.user.clone() else {
            let why = session
                .refusal(Needs::Authenticated)
                .unwrap_or("Log in first");
            no_or_bad(wire, tag, StatusKind::Bad, why).await?;
            return Ok(Next::Continue);
        };
        match command {
            Extended::MultiAppend(appends) => {
                self.multi_append(wire, session, &account, tag, appends)
                    .await?;
                self.hints.changed(&account);
            }
            Extended::List(request) => {
                self.list(wire, session, &account, tag, &request).await?;
            }
            Extended::Notify(request) => {
                self.notify(wire, session, &account, tag, *request).await?;
            }
        }
        Ok(Next::Continue)
    }

    async fn dispatch<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Result<Next> {
        match body {
            CommandBody::Noop | CommandBody::Check => {
                self.report_changes(wire, session, Expunges::Report).await?;
                self.tell_watched(wire, session).await?;
                ok(wire, tag, "Done").await?;
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                let request = ListRequest::plain(&mailbox_bytes(&reference), &mailbox_wildcard);
                self.list(wire, session, account, tag, &request).await?;
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                let reference = mailbox_bytes(&reference);
                self.lsub(wire, session, account, tag, &reference, &mailbox_wildcard)
                    .await?;
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                self.status(wire, session, account, tag, &mailbox, &item_names)
                    .await?;
            }
            CommandBody::Create { mailbox } => {
                self.create(wire, session, account, tag, &mailbox).await?;
            }
            CommandBody::Delete { mailbox } => {
                self.delete(wire, session, account, tag, &mailbox).await?;
            }
            CommandBody::Rename { from, to } => {
                self.rename(wire, session, account, tag, &from, &to).await?;
            }
            CommandBody::Subscribe { mailbox } => {
                self.subscribe(wire, session, account, tag, &mailbox, true)
                    .await?;
            }
            CommandBody::Unsubscribe { mailbox } => {
                self.subscribe(wire, session, account, tag, &mailbox, false)
                    .await?;
            }
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                let upload = Upload {
                    flags: &flags,
                    date: date.as_ref(),
                    message: &message,
                };
                self.append(wire, session, account, tag, &mailbox, upload)
                    .await?;
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } => {
                session.condstore |= parameters.contains(&SelectParameter::CondStore);
                let opening = Opening::new(false, &parameters);
                self.select(wire, session, account, tag, &mailbox, opening)
                    .await?;
            }
            CommandBody::Examine {
                mailbox,
                parameters,
            } => {
                session.condstore |= parameters.contains(&SelectParameter::CondStore);
                let opening = Opening::new(true, &parameters);
                self.select(wire, session, account, tag, &mailbox, opening)
                    .await?;
            }
            CommandBody::Namespace => {
                // One personal namespace, no prefix, "/" between levels; no others.
                wire.send_raw(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
                    .await?;
                ok(wire, tag, "NAMESPACE done").await?;
            }
            CommandBody::Enable { capabilities } => {
                self.enable(wire, session, tag, capabilities.as_ref())
                    .await?;
            }
            CommandBody::Compress { .. } => {
                // DEFLATE is the one algorithm imap-codec reads (and RFC 4978 defines).
                if wire.is_deflated() {
                    let text = "[COMPRESSIONACTIVE] DEFLATE is on already";
                    no_or_bad(wire, tag, StatusKind::No, text).await?;
                } else if let Some(place) = self
                    .compressed
                    .enter((), self.settings.max_compressed_sessions)
                {
                    session.compressed = Some(place);
                    ok(wire, tag, "DEFLATE active").await?;
                    return Ok(Next::Compress);
                } else {
                    let text = "[LIMIT] Too many compressed sessions; go on uncompressed";
                    no_or_bad(wire, tag, StatusKind::No, text).await?;
                }
            }
            CommandBody::Close => {
                self.close_folder(wire, session, account, tag).await?;
            }
            CommandBody::Unselect => {
                session.selected = None;
                ok(wire, tag, "UNSELECT done").await?;
            }
            CommandBody::Expunge => {
                self.expunge(wire, session, account, tag, None).await?;
            }
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(wire, session, account, tag, Some(&sequence_set))
                    .await?;
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let changed_since = modifiers.iter().find_map(|m| match m {
                    FetchModifier::ChangedSince(since) => Some(since.get()),
                    FetchModifier::Vanished => None,
                });
                if modifiers.contains(&FetchModifier::Vanished) {
                    // RFC 7162 §3.2.6: only UID FETCH, with CHANGEDSINCE, once QRESYNC is on.
                    if !(uid && changed_since.is_some() && session.qresync) {
                        let text = "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC";
                        no_or_bad(wire, tag, StatusKind::Bad, text).await?;
                        return Ok(Next::Continue);
                    }
                    self.fetch_vanished(wire, session, account, &sequence_set)
                        .await?;
                }
                self.fetch(
                    wire,
                    session,
                    account,
                    &sequence_set,
                    macro_or_item_names,
                    uid,
                    changed_since,
                )
                .await?;
                self.report_changes(wire, session, held_unless(uid)).await?;
                ok(wire, tag, "FETCH done").await?;
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(since)| *since)
                    .next();
                if unchanged_since.is_some() {
                    self.enable_condstore(wire, session).await?;
                }
                let stored = self
                    .store_flags(
                        wire,
                        session,
                        account,
                        &sequence_set,
                        kind,
                        response,
                        &flags,
                        uid,
                        unchanged_since,
                    )
                    .await?;
                match stored {
                    Stored::Done { modified } => {
                        self.report_changes(wire, session, held_unless(uid)).await?;
                        if modified.is_empty() {
                            ok(wire, tag, "STORE done").await?;
                        } else {
                            let text = format!(
                                "[MODIFIED {}] Conditional STORE failed for some",
                                uid_set(&modified)
                            );
                            tagged_raw(wire, &tag, "OK", &text).await?;
                        }
                    }
                    Stored::Refused(why) => {
                        no_or_bad(wire, tag, StatusKind::No, why).await?;
                    }
                }
            }
            CommandBody::Search { criteria, uid, .. } => {
                if criteria.as_ref().iter().any(crate::search::uses_modseq) {
                    self.enable_condstore(wire, session).await?;
                }
                self.search(wire, session, account, tag, &criteria, uid)
                    .await?;
            }
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } => {
                self.sort(
                    wire,
                    session,
                    account,
                    tag,
                    &sort_criteria,
                    &charset,
                    &search_criteria,
                    uid,
                )
                .await?;
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } => {
                self.thread(
                    wire,
                    session,
                    account,
                    tag,
                    &algorithm,
                    &charset,
                    &search_criteria,
                    uid,
                )
                .await?;
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(
                    wire,
                    session,
                    account,
                    tag,
                    &sequence_set,
                    &mailbox,
                    uid,
                    false,
                )
                .await?;
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                self.copy(
                    wire,
                    session,
                    account,
                    tag,
                    &sequence_set,
                    &mailbox,
                    uid,
                    true,
                )
                .await?;
            }
            CommandBody::Idle => {
                return self.idle(wire, session, tag).await;
            }
            _ => {
                no_or_bad(
                    wire,
                    tag,
                    StatusKind::Bad,
                    "Not a command this server knows",
                )
                .await?;
            }
        }
        Ok(Next::Continue)
    }
}

/// A mailbox name's bytes as sent (LIST's reference).
fn mailbox_bytes(mailbox: &imap_codec::imap_types::mailbox::Mailbox<'_>) -> Vec<u8> {
    use imap_codec::imap_types::mailbox::Mailbox;
    match mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    }
}

/// EXPUNGE responses wait during FETCH, STORE and SEARCH by sequence number.
fn held_unless(by_uid: bool) -> Expunges {
    if by_uid {
        Expunges::Report
    } else {
        Expunges::Hold
    }
}
