//! Folder names and listings: LIST/LSUB (SPECIAL-USE and CHILDREN attributes, the push
//! service's alias names), STATUS, and how IMAP names map to folders (modified UTF-7, INBOX
//! in any case, aliases).

use std::num::NonZeroU32;

use imap_codec::imap_types::core::{AString, Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use pushmail_core::folder::{DELIMITER, FolderName};
use pushmail_core::mailbox::Folder;
use pushmail_core::types::Address;
use pushmail_store::MessagePages;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, io, no_or_bad, ok};
use crate::state::{Imap, Session};
use crate::utf7;
use crate::wire::Wire;

/// The IMAP name of a folder.
pub(crate) fn mailbox_name(name: &FolderName) -> Mailbox<'static> {
    if name.is_inbox() {
        return Mailbox::Inbox;
    }
    AString::try_from(utf7::encode(name.as_str()))
        .map(Mailbox::from)
        .unwrap_or(Mailbox::Inbox)
}

/// A folder name from IMAP's, if it is one pushmail accepts. A trailing delimiter is dropped
/// (RFC 3501 §6.3.3: CREATE `a/` creates `a`).
pub(crate) fn folder_name(mailbox: &Mailbox<'_>) -> Option<FolderName> {
    match mailbox {
        Mailbox::Inbox => Some(FolderName::inbox()),
        Mailbox::Other(other) => {
            let name = utf7::decode(other.as_ref())?;
            FolderName::parse(name.strip_suffix(DELIMITER).unwrap_or(&name)).ok()
        }
    }
}

fn attributes(folder: &Folder, all: &[Folder]) -> Vec<FlagNameAttribute<'static>> {
    let prefix = format!("{}{DELIMITER}", folder.name);
    let children = all.iter().any(|f| f.name.as_str().starts_with(&prefix));
    // CHILDREN (RFC 3348).
    let mut names = vec![if children {
        "HasChildren"
    } else {
        "HasNoChildren"
    }];
    if let Some(role) = folder.special_use {
        names.push(role.attribute().trim_start_matches('\\'));
    }
    names
        .into_iter()
        .filter_map(|name| Atom::try_from(name.to_owned()).ok())
        .map(FlagNameAttribute::from)
        .collect()
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

/// LIST's pattern as the names it matches are written: modified UTF-7 decoded, so `*` and `%`
/// match characters, not their encoding.
fn pattern_of(wildcard: &ListMailbox<'_>) -> Option<String> {
    let bytes = match wildcard {
        ListMailbox::Token(token) => token.as_ref(),
        ListMailbox::String(string) => string.as_ref(),
    };
    utf7::decode(bytes)
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
            .map_err(io)?
            .is_some_and(|link| link.is_linked());
        if !linked {
            return Ok(Vec::new());
        }
        let Some(domain) = self.store.domain(&account.domain()).await.map_err(io)? else {
            return Ok(Vec::new());
        };
        let folders = self.store.folders(account).await.map_err(io)?;
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
    pub(crate) fn resolve(session: &Session, mailbox: &Mailbox<'_>) -> Option<FolderName> {
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

    /// LIST, or LSUB (`subscribed_only`).
    pub(crate) async fn list<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        wildcard: &ListMailbox<'_>,
        subscribed_only: bool,
    ) -> Result<()> {
        // A pattern that is not modified UTF-7 names no folder (every name is kept valid):
        // nothing to list, as Dovecot answers, rather than an error.
        let Some(pattern) = pattern_of(wildcard) else {
            return ok(wire, tag, "LIST done").await;
        };
        let keyword = if subscribed_only { "LSUB" } else { "LIST" };
        if pattern.is_empty() {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            wire.send_raw(format!("* {keyword} (\\Noselect) \"/\" \"\"\r\n").as_bytes())
                .await?;
            return ok(wire, tag, "LIST done").await;
        }
        let mut folders = self.store.folders(account).await.map_err(io)?;
        // Aliases are listed as folders of their own, with the special use of what they name.
        let named: Vec<Folder> = session
            .aliases
            .iter()
            .filter_map(|(alias, target)| {
                let mut folder = folders.iter().find(|f| f.name == *target)?.clone();
                folder.name = alias.clone();
                Some(folder)
            })
            .collect();
        folders.extend(named);
        for folder in &folders {
            if subscribed_only && !folder.subscribed {
                continue;
            }
            let name = folder.name.as_str().as_bytes();
            let matches = if folder.name.is_inbox() {
                list_matches(pattern.to_ascii_uppercase().as_bytes(), name)
            } else {
                list_matches(pattern.as_bytes(), name)
            };
            if !matches {
                continue;
            }
            let delimiter = QuotedChar::try_from(DELIMITER).ok();
            let mailbox = mailbox_name(&folder.name);
            let data = if subscribed_only {
                // LSUB tells subscriptions, not the folders' state (as Dovecot answers).
                Data::Lsub {
                    items: Vec::new(),
                    delimiter,
                    mailbox,
                }
            } else {
                let items = attributes(folder, &folders);
                Data::List {
                    items,
                    delimiter,
                    mailbox,
                }
            };
            wire.send(&Response::Data(data)).await?;
        }
        if subscribed_only {
            // A parent that is not subscribed but has a subscribed child the pattern's `%` does
            // not reach is listed \Noselect (RFC 3501 §6.3.9).
            let subscribed: Vec<&str> = folders
                .iter()
                .filter(|f| f.subscribed)
                .map(|f| f.name.as_str())
                .collect();
            let mut told: Vec<String> = Vec::new();
            for name in &subscribed {
                // Only where the pattern stops short of the child (`%`); `*` lists the child.
                if list_matches(pattern.as_bytes(), name.as_bytes()) {
                    continue;
                }
                let mut parent = String::new();
                let parts: Vec<&str> = name.split(DELIMITER).collect();
                for part in parts.iter().take(parts.len().saturating_sub(1)) {
                    if !parent.is_empty() {
                        parent.push(DELIMITER);
                    }
                    parent.push_str(part);
                    if subscribed.contains(&parent.as_str())
                        || told.contains(&parent)
                        || !list_matches(pattern.as_bytes(), parent.as_bytes())
                    {
                        continue;
                    }
                    let Ok(folder_name) = FolderName::parse(&parent) else {
                        continue;
                    };
                    told.push(parent.clone());
                    let data = Data::Lsub {
                        items: vec![FlagNameAttribute::Noselect],
                        delimiter: QuotedChar::try_from(DELIMITER).ok(),
                        mailbox: mailbox_name(&folder_name),
                    };
                    wire.send(&Response::Data(data)).await?;
                }
            }
        }
        ok(wire, tag, &format!("{keyword} done")).await
    }

    pub(crate) async fn status<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<()> {
        let folder = match Self::resolve(session, mailbox) {
            Some(name) => self.store.folder(account, &name).await.map_err(io)?,
            None => None,
        };
        let Some(folder) = folder else {
            return no_or_bad(wire, tag, StatusKind::No, "[NONEXISTENT] No such folder").await;
        };
        let (mut unseen, mut recent) = (0, 0);
        if names.contains(&StatusDataItemName::Unseen)
            || names.contains(&StatusDataItemName::Recent)
        {
            let mut pages = MessagePages::new(&*self.store, account, &folder.name);
            while let Some(page) = pages.next().await.map_err(io)? {
                unseen += page.iter().filter(|m| !m.is_seen()).count() as u32;
                recent += page
                    .iter()
                    .filter(|m| folder.is_unclaimed_recent(m.uid))
                    .count() as u32;
            }
        }
        let items: Vec<StatusDataItem> = names
            .iter()
            .filter_map(|name| match name {
                StatusDataItemName::Messages => Some(StatusDataItem::Messages(folder.messages)),
                StatusDataItemName::Recent => Some(StatusDataItem::Recent(recent)),
                StatusDataItemName::UidNext => {
                    NonZeroU32::new(folder.uid_next).map(StatusDataItem::UidNext)
                }
                StatusDataItemName::UidValidity => {
                    NonZeroU32::new(folder.uid_validity).map(StatusDataItem::UidValidity)
                }
                StatusDataItemName::Unseen => Some(StatusDataItem::Unseen(unseen)),
                StatusDataItemName::HighestModSeq => {
                    Some(StatusDataItem::HighestModSeq(folder.highest_modseq))
                }
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
