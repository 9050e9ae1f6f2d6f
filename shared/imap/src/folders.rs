//! The authenticated state: LIST/LSUB (with SPECIAL-USE attributes), SELECT/EXAMINE and the
//! selected folder's view (its UIDs, from which message sequence numbers come), CLOSE/UNSELECT,
//! and new messages reported as EXISTS.

use std::num::NonZeroU32;

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{AString, Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use pushmail_core::folder::{DELIMITER, FolderName};
use pushmail_core::mailbox::Folder;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::session::{Imap, Next, Result, Session, no_or_bad, ok, send_status};
use crate::wire::Wire;

/// The selected folder as this session sees it.
pub(crate) struct Selected {
    pub folder: FolderName,
    /// EXAMINE: nothing in the folder changes through this view.
    pub read_only: bool,
    /// UIDs in order: message sequence number n is `uids[n - 1]`.
    pub uids: Vec<u32>,
    /// The account's change counter this view has caught up with.
    pub seen_change: u64,
}

/// The IMAP name of a folder.
pub(crate) fn mailbox_name(name: &FolderName) -> Mailbox<'static> {
    if name.is_inbox() {
        return Mailbox::Inbox;
    }
    AString::try_from(name.as_str().to_owned())
        .map(Mailbox::from)
        .unwrap_or(Mailbox::Inbox)
}

/// A folder name from IMAP's, if it is one pushmail accepts.
fn folder_name(mailbox: &Mailbox<'_>) -> Option<FolderName> {
    match mailbox {
        Mailbox::Inbox => FolderName::parse("INBOX").ok(),
        Mailbox::Other(other) => std::str::from_utf8(other.as_ref())
            .ok()
            .and_then(|name| FolderName::parse(name).ok()),
    }
}

fn attributes(folder: &Folder) -> Vec<FlagNameAttribute<'static>> {
    folder
        .special_use
        .and_then(|role| Atom::try_from(role.attribute().trim_start_matches('\\').to_owned()).ok())
        .map(|atom| vec![FlagNameAttribute::from(atom)])
        .unwrap_or_default()
}

/// `*` and `%` of LIST (RFC 3501 §6.3.8): `%` stops at the hierarchy delimiter. Dynamic
/// programming over the pattern, so no pattern costs more than its length times the name's.
fn list_matches(pattern: &[u8], name: &[u8]) -> bool {
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for &c in pattern {
        let mut next = vec![false; name.len() + 1];
        let mut reachable = false;
        for j in 0..=name.len() {
            match c {
                b'*' => {
                    reachable |= matched[j];
                    next[j] = reachable;
                }
                b'%' => {
                    if j > 0 && name[j - 1] == DELIMITER as u8 {
                        reachable = false;
                    }
                    reachable |= matched[j];
                    next[j] = reachable;
                }
                _ => next[j] = j > 0 && matched[j - 1] && name[j - 1] == c,
            }
        }
        matched = next;
    }
    matched[name.len()]
}

impl Imap {
    /// An integrated account's folder aliases (alias → the folder with that special use); none
    /// for an account that is not integrated, or when an alias is a folder's own name.
    pub(crate) async fn folder_aliases(
        &self,
        account: &Address,
    ) -> Result<Vec<(FolderName, FolderName)>> {
        let linked = self
            .store
            .link(account)
            .await
            .map_err(std::io::Error::other)?
            .is_some_and(|link| link.is_linked());
        if !linked {
            return Ok(Vec::new());
        }
        let Some(domain) = self
            .store
            .domain(&account.domain())
            .await
            .map_err(std::io::Error::other)?
        else {
            return Ok(Vec::new());
        };
        let folders = self
            .store
            .folders(account)
            .await
            .map_err(std::io::Error::other)?;
        let mut aliases = Vec::new();
        for (alias, role) in domain.folder_aliases() {
            let Ok(alias) = FolderName::parse(alias) else {
                continue;
            };
            let target = folders.iter().find(|f| f.special_use == Some(role));
            if let Some(target) = target
                && !folders.iter().any(|f| f.name == alias)
            {
                aliases.push((alias, target.name.clone()));
            }
        }
        Ok(aliases)
    }

    /// The folder an IMAP name stands for: the folder itself, or what an alias names.
    fn resolve(session: &Session, mailbox: &Mailbox<'_>) -> Option<FolderName> {
        let name = folder_name(mailbox)?;
        Some(
            session
                .aliases
                .iter()
                .find(|(alias, _)| *alias == name)
                .map(|(_, target)| target.clone())
                .unwrap_or(name),
        )
    }

    pub(crate) async fn authenticated<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
        body: CommandBody<'static>,
    ) -> Result<Next> {
        let Some(user) = session.user.clone() else {
            no_or_bad(wire, tag, StatusKind::Bad, "Log in first").await?;
            return Ok(Next::Continue);
        };
        match body {
            CommandBody::List {
                mailbox_wildcard, ..
            }
            | CommandBody::Lsub {
                mailbox_wildcard, ..
            } => {
                let pattern = match &mailbox_wildcard {
                    imap_codec::imap_types::mailbox::ListMailbox::Token(token) => {
                        token.as_ref().to_vec()
                    }
                    imap_codec::imap_types::mailbox::ListMailbox::String(string) => {
                        string.as_ref().to_vec()
                    }
                };
                self.list(wire, &user.address, &session.aliases, &pattern)
                    .await?;
                ok(wire, tag, "LIST done").await?;
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => {
                self.status(wire, session, &user.address, tag, &mailbox, &item_names)
                    .await?;
            }
            CommandBody::Select { mailbox, .. } => {
                self.select(wire, session, &user.address, tag, &mailbox, false)
                    .await?;
            }
            CommandBody::Examine { mailbox, .. } => {
                self.select(wire, session, &user.address, tag, &mailbox, true)
                    .await?;
            }
            CommandBody::Namespace => {
                // One personal namespace, no prefix, "/" between levels; no others.
                wire.send_raw(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n")
                    .await?;
                ok(wire, tag, "NAMESPACE done").await?;
            }
            CommandBody::Enable { .. } => {
                // No extension this server has needs enabling yet (RFC 5161: report none).
                wire.send_raw(b"* ENABLED\r\n").await?;
                ok(wire, tag, "ENABLE done").await?;
            }
            CommandBody::Close | CommandBody::Unselect if session.selected.is_some() => {
                session.selected = None;
                ok(wire, tag, "Closed").await?;
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } if session.selected.is_some() => {
                self.fetch(
                    wire,
                    session,
                    &user.address,
                    &sequence_set,
                    macro_or_item_names,
                    uid,
                )
                .await?;
                ok(wire, tag, "FETCH done").await?;
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } if session.selected.is_some() => {
                self.store_flags(
                    wire,
                    session,
                    &user.address,
                    tag,
                    &sequence_set,
                    kind,
                    response,
                    &flags,
                    uid,
                )
                .await?;
            }
            CommandBody::Search { criteria, uid, .. } if session.selected.is_some() => {
                self.search(wire, session, &user.address, tag, &criteria, uid)
                    .await?;
            }
            CommandBody::Idle if session.selected.is_some() => {
                return self.idle(wire, session, &user.address, tag).await;
            }
            CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Search { .. }
            | CommandBody::Idle => {
                no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await?;
            }
            _ => {
                no_or_bad(wire, tag, StatusKind::Bad, "Command not supported yet").await?;
            }
        }
        Ok(Next::Continue)
    }

    async fn list<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        account: &Address,
        aliases: &[(FolderName, FolderName)],
        pattern: &[u8],
    ) -> Result<()> {
        if pattern.is_empty() {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            return wire.send_raw(b"* LIST (\\Noselect) \"/\" \"\"\r\n").await;
        }
        let mut folders = self
            .store
            .folders(account)
            .await
            .map_err(std::io::Error::other)?;
        // Aliases are listed as folders of their own, with the special use of what they name.
        let named: Vec<Folder> = aliases
            .iter()
            .filter_map(|(alias, target)| {
                let mut folder = folders.iter().find(|f| f.name == *target)?.clone();
                folder.name = alias.clone();
                Some(folder)
            })
            .collect();
        folders.extend(named);
        for folder in folders {
            let name = folder.name.as_str().as_bytes();
            let matches = if folder.name.is_inbox() {
                list_matches(&pattern.to_ascii_uppercase(), name)
            } else {
                list_matches(pattern, name)
            };
            if !matches {
                continue;
            }
            let data = Data::List {
                items: attributes(&folder),
                delimiter: QuotedChar::try_from(DELIMITER).ok(),
                mailbox: mailbox_name(&folder.name),
            };
            wire.send(&Response::Data(data)).await?;
        }
        Ok(())
    }

    /// Reads a folder's UIDs, in pages.
    pub(crate) async fn uids(&self, account: &Address, folder: &FolderName) -> Result<Vec<u32>> {
        let mut uids = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .messages(account, folder, after, 1000)
                .await
                .map_err(std::io::Error::other)?;
            let Some(last) = page.last() else {
                return Ok(uids);
            };
            after = last.uid;
            uids.extend(page.iter().map(|m| m.uid));
        }
    }

    async fn select<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        read_only: bool,
    ) -> Result<()> {
        session.selected = None;
        let folder = match Self::resolve(session, mailbox) {
            Some(name) => self
                .store
                .folder(account, &name)
                .await
                .map_err(std::io::Error::other)?,
            None => None,
        };
        let Some(folder) = folder else {
            return no_or_bad(wire, tag, StatusKind::No, "No such folder").await;
        };
        // The change counter first: a delivery between the two reads is reported again, never
        // missed.
        let seen_change = self.change_counter(account).await?;
        let uids = self.uids(account, &folder.name).await?;
        let flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        wire.send(&Response::Data(Data::Flags(flags.clone())))
            .await?;
        wire.send(&Response::Data(Data::Exists(uids.len() as u32)))
            .await?;
        wire.send(&Response::Data(Data::Recent(0))).await?;
        let permanent: Vec<FlagPerm> = if read_only {
            Vec::new()
        } else {
            flags.into_iter().map(FlagPerm::Flag).collect()
        };
        let mut codes = vec![(Code::PermanentFlags(permanent), "Flags")];
        if let Some(validity) = NonZeroU32::new(folder.uid_validity) {
            codes.push((Code::UidValidity(validity), "UIDs valid"));
        }
        if let Some(next) = NonZeroU32::new(folder.uid_next) {
            codes.push((Code::UidNext(next), "Predicted next UID"));
        }
        for (code, text) in codes {
            send_status(wire, None, StatusKind::Ok, Some(code), text).await?;
        }
        session.selected = Some(Selected {
            folder: folder.name,
            read_only,
            uids,
            seen_change,
        });
        let (code, text) = if read_only {
            (Code::ReadOnly, "EXAMINE done")
        } else {
            (Code::ReadWrite, "SELECT done")
        };
        send_status(wire, Some(tag), StatusKind::Ok, Some(code), text).await
    }

    async fn status<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<()> {
        let folder = match Self::resolve(session, mailbox) {
            Some(name) => self
                .store
                .folder(account, &name)
                .await
                .map_err(std::io::Error::other)?,
            None => None,
        };
        let Some(folder) = folder else {
            return no_or_bad(wire, tag, StatusKind::No, "No such folder").await;
        };
        let mut unseen = 0;
        if names.contains(&StatusDataItemName::Unseen) {
            let mut after = 0;
            loop {
                let page = self
                    .store
                    .messages(account, &folder.name, after, 1000)
                    .await
                    .map_err(std::io::Error::other)?;
                let Some(last) = page.last() else { break };
                after = last.uid;
                unseen += page
                    .iter()
                    .filter(|m| !m.flags.iter().any(|f| f == "\\Seen"))
                    .count() as u32;
            }
        }
        let items: Vec<StatusDataItem> = names
            .iter()
            .filter_map(|name| match name {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(folder.messages)),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(0)),
                StatusDataItemName::UidNext => {
                    NonZeroU32::new(folder.uid_next).map(StatusDataItem::UidNext)
                }
                StatusDataItemName::UidValidity => {
                    NonZeroU32::new(folder.uid_validity).map(StatusDataItem::UidValidity)
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(unseen)),
                _ => None,
            })
            .collect();
        let data = Data::Status {
            mailbox: mailbox.clone(),
            items: items.into(),
        };
        wire.send(&Response::Data(data)).await?;
        ok(wire, tag, "STATUS done").await
    }

    /// The account's change counter now.
    pub(crate) async fn change_counter(&self, account: &Address) -> Result<u64> {
        let mut counter = 0;
        loop {
            let changes = self
                .store
                .changes_since(account, counter, 1000)
                .await
                .map_err(std::io::Error::other)?;
            match changes.last() {
                Some(last) => counter = last.counter,
                None => return Ok(counter),
            }
        }
    }

    /// New messages in the selected folder since the view last caught up: `* N EXISTS`.
    pub(crate) async fn report_changes<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
    ) -> Result<()> {
        let (Some(user), Some(selected)) = (&session.user, &mut session.selected) else {
            return Ok(());
        };
        let changes = self
            .store
            .changes_since(&user.address, selected.seen_change, 1000)
            .await
            .map_err(std::io::Error::other)?;
        let Some(last) = changes.last() else {
            return Ok(());
        };
        selected.seen_change = last.counter;
        let known = selected.uids.last().copied().unwrap_or(0);
        let mut added: Vec<u32> = changes
            .iter()
            .filter(|change| change.folder == selected.folder && change.uid > known)
            .map(|change| change.uid)
            .collect();
        if added.is_empty() {
            return Ok(());
        }
        added.sort_unstable();
        added.dedup();
        selected.uids.extend(added);
        let exists = selected.uids.len() as u32;
        wire.send(&Response::Data(Data::Exists(exists))).await
    }
}

#[cfg(test)]
mod tests {
    use super::list_matches;

    #[test]
    fn list_wildcards() {
        assert!(list_matches(b"*", b"Lists/rust"));
        assert!(list_matches(b"%", b"INBOX"));
        assert!(!list_matches(b"%", b"Lists/rust"));
        assert!(list_matches(b"Lists/%", b"Lists/rust"));
        assert!(list_matches(b"L*t", b"Lists/rust"));
        assert!(!list_matches(b"Sent", b"Sent Items"));
    }
}
