//! CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE. INBOX, the special-use folders the push
//! service's aliases and every client rely on, and the alias names themselves cannot be
//! deleted or renamed; an account holds at most `max_folders` folders.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::StatusKind;
use pushmail_core::folder::{DELIMITER, FolderName};
use pushmail_core::types::{Address, now};
use pushmail_store::FolderChange;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, io, no_or_bad, ok};
use crate::state::{Imap, Session};
use crate::utf7::folder_name;
use crate::wire::Wire;

impl Imap {
    /// Why a folder may not be deleted or renamed, if it may not.
    async fn protected(
        &self,
        session: &Session,
        account: &Address,
        name: &FolderName,
    ) -> Result<Option<&'static str>> {
        if session.aliases.iter().any(|(alias, _)| alias == name) {
            return Ok(Some("[CANNOT] That name stands for a special-use folder"));
        }
        let folder = self.store.folder(account, name).await.map_err(io)?;
        Ok(match folder {
            None => Some("[NONEXISTENT] No such folder"),
            Some(folder) if folder.special_use.is_some() => {
                Some("[CANNOT] Special-use folders stay (clients and the push service use them)")
            }
            Some(_) => None,
        })
    }

    pub(crate) async fn create<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Result<()> {
        let Some(name) = folder_name(mailbox) else {
            return no_or_bad(
                wire,
                tag,
                StatusKind::No,
                "[CANNOT] Not a valid folder name",
            )
            .await;
        };
        let folders = self.store.folders(account).await.map_err(io)?;
        if name.is_inbox()
            || folders.iter().any(|f| f.name == name)
            || session.aliases.iter().any(|(alias, _)| *alias == name)
        {
            return no_or_bad(wire, tag, StatusKind::No, "[ALREADYEXISTS] It exists").await;
        }
        // Superior names are created too (RFC 3501 §6.3.3).
        let mut missing = Vec::new();
        let mut path = String::new();
        for part in name.as_str().split(DELIMITER) {
            if !path.is_empty() {
                path.push(DELIMITER);
            }
            path.push_str(part);
            let level = FolderName::parse(&path).map_err(io)?;
            if !folders.iter().any(|f| f.name == level) {
                missing.push(level);
            }
        }
        if folders.len() + missing.len() > self.settings.max_folders {
            let text = format!("[LIMIT] At most {} folders", self.settings.max_folders);
            return no_or_bad(wire, tag, StatusKind::No, &text).await;
        }
        // A name subscribed before its folder was deleted is subscribed still.
        let kept = self
            .store
            .subscriptions_without_folder(account)
            .await
            .map_err(io)?;
        for level in missing {
            self.store
                .create_folder(account, &level, now())
                .await
                .map_err(io)?;
            // CREATE does not subscribe (RFC 3501 §6.3.3, §6.3.6): the client does, if it will.
            if !kept.contains(&level) {
                self.store
                    .set_subscribed(account, &level, false)
                    .await
                    .map_err(io)?;
            }
        }
        ok(wire, tag, "CREATE done").await
    }

    pub(crate) async fn delete<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
    ) -> Result<()> {
        let Some(name) = folder_name(mailbox) else {
            return no_or_bad(wire, tag, StatusKind::No, "[NONEXISTENT] No such folder").await;
        };
        if name.is_inbox() {
            return no_or_bad(wire, tag, StatusKind::No, "[CANNOT] INBOX stays").await;
        }
        if let Some(why) = self.protected(session, account, &name).await? {
            return no_or_bad(wire, tag, StatusKind::No, why).await;
        }
        let changed = self.store.delete_folder(account, &name).await.map_err(io)?;
        if changed == FolderChange::Done
            && session.selected.as_ref().is_some_and(|s| s.folder == name)
        {
            session.selected = None;
        }
        answer(wire, tag, changed, "DELETE done").await
    }

    pub(crate) async fn rename<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        from: &Mailbox<'_>,
        to: &Mailbox<'_>,
    ) -> Result<()> {
        let (Some(from), Some(to)) = (folder_name(from), folder_name(to)) else {
            return no_or_bad(
                wire,
                tag,
                StatusKind::No,
                "[CANNOT] Not a valid folder name",
            )
            .await;
        };
        if !from.is_inbox()
            && let Some(why) = self.protected(session, account, &from).await?
        {
            return no_or_bad(wire, tag, StatusKind::No, why).await;
        }
        if to.is_inbox() || session.aliases.iter().any(|(alias, _)| *alias == to) {
            return no_or_bad(wire, tag, StatusKind::No, "[ALREADYEXISTS] It exists").await;
        }
        let changed = self
            .store
            .rename_folder(account, &from, &to, now())
            .await
            .map_err(io)?;
        answer(wire, tag, changed, "RENAME done").await
    }

    pub(crate) async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        subscribed: bool,
    ) -> Result<()> {
        let done = match Self::resolve(session, mailbox) {
            Some(name) => self
                .store
                .set_subscribed(account, &name, subscribed)
                .await
                .map_err(io)?,
            None => false,
        };
        if done {
            ok(wire, tag, "Done").await
        } else {
            no_or_bad(wire, tag, StatusKind::No, "[NONEXISTENT] No such folder").await
        }
    }
}

/// The answer to a DELETE or RENAME the store did (or refused).
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: Tag<'static>,
    changed: FolderChange,
    done: &str,
) -> Result<()> {
    let refusal = match changed {
        FolderChange::Done => return ok(wire, tag, done).await,
        FolderChange::NoSuchFolder => "[NONEXISTENT] No such folder",
        FolderChange::Exists => "[ALREADYEXISTS] It exists",
        FolderChange::IntoItself => "[CANNOT] Not into itself",
        FolderChange::NotEmpty => "[INUSE] Mail keeps arriving; try again",
    };
    no_or_bad(wire, tag, StatusKind::No, refusal).await
}
