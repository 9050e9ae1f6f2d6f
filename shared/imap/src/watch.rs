//! The folders a NOTIFY session watches (`notify.rs` reads what it asked), and telling it what
//! changed there: new, removed and re-flagged mail as `* STATUS` from the change log, folders
//! created and deleted (MailboxName) and (un)subscribed (SubscriptionChange) as `* LIST` from
//! the folder list, compared with what it was last told. The selected folder is not watched
//! here: it is reported as always (`select.rs`). While the session waits for its next command,
//! `watching` also waits for a hint or the next look, so a client told of changes needs no
//! IDLE and no NOOP.

use std::collections::BTreeMap;

use imap_codec::imap_types::core::Tag;
use pushmail_core::folder::FolderName;
use pushmail_core::metric_names::CHANGE_LOG_LOST;
use pushmail_core::types::Address;
use pushmail_store::{ChangeKind, ChangesAfter};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::notify::{Events, NotifyRequest, Watch};
use crate::reply::{Result, bye, io, ok, tagged_raw};
use crate::state::{Imap, Next, Session};
use crate::utf7::mailbox_name;
use crate::wire::Wire;

/// What happened to one folder's messages.
#[derive(Default, Clone, Copy)]
struct Happened {
    new: bool,
    expunge: bool,
    flags: bool,
}

/// What the wait for the next command ended with.
pub(crate) enum Watched {
    /// The peer sent something: read the command.
    Bytes,
    Ended(Next),
}

impl Imap {
    /// NOTIFY NONE or NOTIFY SET (with STATUS: each watched folder's state at once).
    pub(crate) async fn notify<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        request: NotifyRequest,
    ) -> Result<()> {
        let NotifyRequest::Set { groups, status } = request else {
            session.watch = None;
            return ok(wire, tag, "NOTIFY done").await;
        };
        let seen_change = self.store.latest_change(account).await.map_err(io)?;
        let folders = self.store.folders(account).await.map_err(io)?;
        let names_asked = groups
            .iter()
            .any(|group| group.events.names || group.events.subscriptions);
        let watch = Watch {
            groups,
            seen_change,
            folders: names_asked.then(|| {
                folders
                    .iter()
                    .map(|f| (f.name.clone(), f.subscribed))
                    .collect()
            }),
        };
        if status {
            let selected = session.selected.as_ref().map(|s| s.folder.clone());
            for folder in folders
                .iter()
                .filter(|f| Some(&f.name) != selected.as_ref())
            {
                let Some(events) = watch.events_for(&folder.name, folder.subscribed) else {
                    continue;
                };
                self.tell_status(wire, session, account, &folder.name, events)
                    .await?;
            }
        }
        session.watch = Some(Box::new(watch));
        ok(wire, tag, "NOTIFY done").await
    }

    /// `NO [BADEVENT …]`: NOTIFY named an event this server does not tell of.
    pub(crate) async fn bad_event<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        tag: Tag<'static>,
    ) -> Result<()> {
        let text = format!(
            "[BADEVENT ({})] Not an event told here",
            crate::notify::SUPPORTED
        );
        tagged_raw(wire, &tag, "NO", &text).await
    }

    async fn tell_status<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        name: &FolderName,
        events: &Events,
    ) -> Result<()> {
        let items = events.status_items();
        if items.is_empty() {
            return Ok(());
        }
        if let Some(data) = self
            .status_data(session, account, &mailbox_name(name), &items)
            .await?
        {
            wire.send(&imap_codec::imap_types::response::Response::Data(data))
                .await?;
        }
        Ok(())
    }

    /// Tells a NOTIFY session what changed in the folders it watches since it was last told.
    pub(crate) async fn tell_watched<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
    ) -> Result<()> {
        let (Some(account), Some(mut watch)) = (session.user.clone(), session.watch.take()) else {
            return Ok(());
        };
        let told = self.tell(wire, session, &account, &mut watch).await;
        session.watch = Some(watch);
        told
    }

    async fn tell<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        watch: &mut Watch,
    ) -> Result<()> {
        let selected = session.selected.as_ref().map(|s| s.folder.clone());
        let mut happened: BTreeMap<FolderName, Happened> = BTreeMap::new();
        // Fallen out of the log's window: what changed where is lost with it, so every folder
        // is told as changed in every way (its STATUS told again is true either way).
        let mut lost = false;
        loop {
            let changes = match self
                .store
                .changes_after(account, watch.seen_change, 1000)
                .await
                .map_err(io)?
            {
                ChangesAfter::Read(changes) => changes,
                ChangesAfter::Lost => {
                    metrics::counter!(CHANGE_LOG_LOST, "kind" => "notify").increment(1);
                    watch.seen_change = self.store.latest_change(account).await.map_err(io)?;
                    lost = true;
                    continue;
                }
            };
            let Some(last) = changes.last() else {
                break;
            };
            watch.seen_change = last.counter;
            for change in changes {
                if Some(&change.folder) == selected.as_ref() {
                    continue;
                }
                let entry = happened.entry(change.folder).or_default();
                match change.kind {
                    ChangeKind::Added => entry.new = true,
                    ChangeKind::Expunged => entry.expunge = true,
                    ChangeKind::Flags => entry.flags = true,
                }
            }
        }
        if happened.is_empty() && !lost && watch.folders.is_none() {
            return Ok(());
        }
        let folders = self.store.folders(account).await.map_err(io)?;
        if lost {
            let everything = Happened {
                new: true,
                expunge: true,
                flags: true,
            };
            for folder in folders
                .iter()
                .filter(|f| Some(&f.name) != selected.as_ref())
            {
                happened.insert(folder.name.clone(), everything);
            }
        }
        for (name, what) in &happened {
            let Some(folder) = folders.iter().find(|f| f.name == *name) else {
                continue;
            };
            let Some(events) = watch.events_for(name, folder.subscribed) else {
                continue;
            };
            if (what.new && events.new)
                || (what.expunge && events.expunge)
                || (what.flags && events.flags)
            {
                self.tell_status(wire, session, account, name, events)
                    .await?;
            }
        }
        let Some(before) = watch.folders.take() else {
            return Ok(());
        };
        let now: Vec<(FolderName, bool)> = folders
            .iter()
            .map(|f| (f.name.clone(), f.subscribed))
            .collect();
        for (name, subscribed) in &now {
            let was = before.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let Some(events) = watch.events_for(name, *subscribed) else {
                continue;
            };
            let attributes = match was {
                None if events.names => "",
                Some(was) if was != *subscribed && events.subscriptions => {
                    if *subscribed {
                        "\\Subscribed"
                    } else {
                        ""
                    }
                }
                _ => continue,
            };
            self.tell_list(wire, name, attributes).await?;
        }
        for (name, subscribed) in &before {
            let gone = !now.iter().any(|(n, _)| n == name);
            if gone && watch.events_for(name, *subscribed).is_some_and(|e| e.names) {
                self.tell_list(wire, name, "\\NonExistent").await?;
            }
        }
        watch.folders = Some(now);
        Ok(())
    }

    async fn tell_list<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        name: &FolderName,
        attributes: &str,
    ) -> Result<()> {
        use imap_codec::ResponseCodec;
        use imap_codec::encode::Encoder;
        use imap_codec::imap_types::response::{Data, Response};
        // The name encoded as LIST encodes it, the attributes written as they are.
        let data = Data::List {
            items: Vec::new(),
            delimiter: imap_codec::imap_types::core::QuotedChar::try_from(
                pushmail_core::folder::DELIMITER,
            )
            .ok(),
            mailbox: mailbox_name(name),
        };
        let encoded = ResponseCodec::default()
            .encode(&Response::Data(data))
            .dump();
        let line = String::from_utf8_lossy(&encoded).replacen(
            "* LIST ()",
            &format!("* LIST ({attributes})"),
            1,
        );
        wire.send_raw(line.as_bytes()).await
    }

    /// The wait for the next command of a NOTIFY session: what the watched folders do is told
    /// as it happens (on a hint, or at each `idle_poll`) until the peer sends something. `None`
    /// of a peer whose next command is already (partly) here: it is read at once.
    pub(crate) async fn watching<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        limit: std::time::Duration,
    ) -> Result<Watched> {
        if !wire.waiting_for_command() {
            return Ok(Watched::Bytes);
        }
        let mut hints = self.hints.subscribe();
        let deadline = Instant::now() + limit;
        let mut look = Instant::now() + self.settings.idle_poll;
        loop {
            let timer = look.min(deadline);
            tokio::select! {
                read = wire.fill() => {
                    return Ok(match read? {
                        0 => Watched::Ended(Next::Logout),
                        _ => Watched::Bytes,
                    });
                }
                hint = hints.recv() => match hint {
                    Ok(changed) if session.user.as_ref() != Some(&changed) => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => tokio::time::sleep_until(timer).await,
                },
                () = tokio::time::sleep_until(timer) => {
                    if timer == deadline {
                        bye(wire, "Autologout; idle for too long").await?;
                        return Ok(Watched::Ended(Next::Logout));
                    }
                }
                () = self.closed() => {
                    bye(wire, "Server shutting down").await?;
                    return Ok(Watched::Ended(Next::Logout));
                }
            }
            look = Instant::now() + self.settings.idle_poll;
            if !Box::pin(self.still_the_same_account(session)).await {
                bye(wire, "Account removed or changed; log in again").await?;
                return Ok(Watched::Ended(Next::Logout));
            }
            Box::pin(self.tell_watched(wire, session)).await?;
        }
    }
}
