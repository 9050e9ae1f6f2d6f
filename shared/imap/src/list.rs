//! Folder names and listings: LIST/LSUB (SPECIAL-USE and CHILDREN attributes, the push
//! service's alias names), STATUS, and how IMAP names map to folders (modified UTF-7, INBOX
//! in any case, aliases).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;

use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use pushmail_core::folder::{DELIMITER, FolderName};
use pushmail_core::mailbox::Folder;
use pushmail_core::types::Address;
use pushmail_store::MessagePages;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::list_request::ListRequest;
use crate::reply::{Result, io, no_or_bad, ok};
use crate::state::{Imap, Session};
use crate::utf7::{folder_name, mailbox_name};
use crate::wire::Wire;

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

/// Whether a folder's name matches a LIST pattern (modified UTF-7 decoded, so `*` and `%` match
/// characters, not their encoding); INBOX in any case.
fn names_match(pattern: &str, name: &str) -> bool {
    match name.eq_ignore_ascii_case("INBOX") {
        true => list_matches(pattern.to_ascii_uppercase().as_bytes(), name.as_bytes()),
        false => list_matches(pattern.as_bytes(), name.as_bytes()),
    }
}

fn attribute(name: &'static str) -> FlagNameAttribute<'static> {
    FlagNameAttribute::from(Atom::unvalidated(name))
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

    /// The account's folders and, as folders of their own, its aliases (with the special use
    /// of what they name).
    async fn folders_and_aliases(
        &self,
        session: &Session,
        account: &Address,
    ) -> Result<Vec<Folder>> {
        let mut folders = self.store.folders(account).await.map_err(io)?;
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
        Ok(folders)
    }

    /// LIST, plain or extended (`list_request.rs`): each name matching a pattern that the
    /// selection options select, with CHILDREN's and SPECIAL-USE's attributes, `\Subscribed`
    /// and `\NonExistent` where they apply, CHILDINFO for RECURSIVEMATCH, and a STATUS answer
    /// after each folder for LIST-STATUS.
    pub(crate) async fn list<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        request: &ListRequest,
    ) -> Result<()> {
        // A pattern that is not modified UTF-7 names no folder (every name is kept valid):
        // nothing to list, as Dovecot answers, rather than an error.
        let patterns = request.full_patterns();
        if patterns.is_empty() {
            return ok(wire, tag, "LIST done").await;
        }
        if patterns.iter().all(String::is_empty) {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            wire.send_raw(b"* LIST (\\Noselect) \"/\" \"\"\r\n").await?;
            return ok(wire, tag, "LIST done").await;
        }
        let folders = self.folders_and_aliases(session, account).await?;
        let kept = match request.subscribed {
            true => self
                .store
                .subscriptions_without_folder(account)
                .await
                .map_err(io)?,
            false => Vec::new(),
        };
        let matching = |name: &str| patterns.iter().any(|pattern| names_match(pattern, name));
        // Every name that may be listed: (folder, subscribed), in name order.
        let mut names: BTreeMap<String, (Option<&Folder>, bool)> = folders
            .iter()
            .map(|f| (f.name.to_string(), (Some(f), f.subscribed)))
            .collect();
        for name in &kept {
            names.entry(name.to_string()).or_insert((None, true));
        }
        let subscribed: Vec<String> = names
            .iter()
            .filter(|(_, (_, subscribed))| *subscribed)
            .map(|(name, _)| name.clone())
            .collect();
        if request.recursive {
            // Levels above a subscribed name that are no folder may carry its CHILDINFO.
            for name in &subscribed {
                let mut parent = name.as_str();
                while let Some((above, _)) = parent.rsplit_once(DELIMITER) {
                    names.entry(above.to_owned()).or_insert((None, false));
                    parent = above;
                }
            }
        }
        let tell_subscribed = request.subscribed || request.return_subscribed;
        for (name, &(folder, is_subscribed)) in &names {
            if !matching(name) {
                continue;
            }
            let mut child_info = false;
            if request.subscribed && !is_subscribed {
                // RECURSIVEMATCH: listed for a subscribed name below it that no pattern lists.
                let below = format!("{name}{DELIMITER}");
                child_info = request.recursive
                    && subscribed
                        .iter()
                        .any(|d| d.starts_with(&below) && !matching(d));
                if !child_info {
                    continue;
                }
            }
            if request.special_use && folder.is_none_or(|f| f.special_use.is_none()) {
                continue;
            }
            let mut items = match folder {
                Some(folder) => attributes(folder, &folders),
                None => vec![attribute("NonExistent")],
            };
            if tell_subscribed && is_subscribed {
                items.push(attribute("Subscribed"));
            }
            let Ok(folder_name) = FolderName::parse(name) else {
                continue;
            };
            let mailbox = mailbox_name(&folder_name);
            let data = Data::List {
                items,
                delimiter: QuotedChar::try_from(DELIMITER).ok(),
                mailbox: mailbox.clone(),
            };
            let mut line = ResponseCodec::default()
                .encode(&Response::Data(data))
                .dump();
            if child_info {
                line.truncate(line.len().saturating_sub(2));
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
            }
            wire.send_raw(&line).await?;
            if let (Some(names), Some(_)) = (&request.status, folder)
                && let Some(data) = self.status_data(session, account, &mailbox, names).await?
            {
                wire.send(&Response::Data(data)).await?;
            }
        }
        ok(wire, tag, "LIST done").await
    }

    /// LSUB: subscribed names matching the pattern, those without a folder too (a subscription
    /// outlives its folder); a parent that is not subscribed but has a subscribed child the
    /// pattern's `%` does not reach is listed \Noselect (RFC 3501 §6.3.9).
    pub(crate) async fn lsub<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        reference: &[u8],
        wildcard: &ListMailbox<'_>,
    ) -> Result<()> {
        let request = ListRequest::plain(reference, wildcard);
        let Some(pattern) = request.full_patterns().pop() else {
            return ok(wire, tag, "LSUB done").await;
        };
        if pattern.is_empty() {
            wire.send_raw(b"* LSUB (\\Noselect) \"/\" \"\"\r\n").await?;
            return ok(wire, tag, "LSUB done").await;
        }
        let folders = self.folders_and_aliases(session, account).await?;
        let kept = self
            .store
            .subscriptions_without_folder(account)
            .await
            .map_err(io)?;
        // LSUB tells subscriptions, not the folders' state (as Dovecot answers); a name
        // without a folder cannot be selected.
        let mut subscribed: Vec<(String, bool)> = folders
            .iter()
            .filter(|f| f.subscribed)
            .map(|f| (f.name.to_string(), true))
            .collect();
        subscribed.extend(kept.iter().map(|name| (name.to_string(), false)));
        for (name, exists) in &subscribed {
            if !names_match(&pattern, name) {
                continue;
            }
            let Ok(folder_name) = FolderName::parse(name) else {
                continue;
            };
            let items = match exists {
                true => Vec::new(),
                false => vec![FlagNameAttribute::Noselect],
            };
            let data = Data::Lsub {
                items,
                delimiter: QuotedChar::try_from(DELIMITER).ok(),
                mailbox: mailbox_name(&folder_name),
            };
            wire.send(&Response::Data(data)).await?;
        }
        let names: Vec<&str> = subscribed.iter().map(|(name, _)| name.as_str()).collect();
        let mut told: Vec<String> = Vec::new();
        for name in &names {
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
                if names.contains(&parent.as_str())
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
        ok(wire, tag, "LSUB done").await
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
        let Some(data) = self.status_data(session, account, mailbox, names).await? else {
            return no_or_bad(wire, tag, StatusKind::No, "[NONEXISTENT] No such folder").await;
        };
        wire.send(&Response::Data(data)).await?;
        ok(wire, tag, "STATUS done").await
    }

    /// A folder's STATUS answer (`None` if there is no such folder): for STATUS, LIST-STATUS
    /// and NOTIFY.
    pub(crate) async fn status_data(
        &self,
        session: &Session,
        account: &Address,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<Option<Data<'static>>> {
        let folder = match Self::resolve(session, mailbox) {
            Some(name) => self.store.folder(account, &name).await.map_err(io)?,
            None => None,
        };
        let Some(folder) = folder else {
            return Ok(None);
        };
        let (mut unseen, mut recent) = (0, 0);
        if names.contains(&StatusDataItemName::Unseen)
            || names.contains(&StatusDataItemName::Recent)
        {
            // Each message's UID and `\Seen` alone: the counts need nothing else of it.
            let mut pages = MessagePages::new(&*self.store, account, &folder.name);
            while let Some(page) = pages.next_seen_marks().await.map_err(io)? {
                unseen += page.iter().filter(|mark| !mark.set).count() as u32;
                recent += page
                    .iter()
                    .filter(|mark| folder.is_unclaimed_recent(mark.uid))
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
        Ok(Some(Data::Status {
            mailbox: mailbox.clone(),
            items: items.into(),
        }))
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
