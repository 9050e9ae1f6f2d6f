//! APPEND with UIDPLUS's APPENDUID, and MULTIAPPEND (RFC 3502): messages stored as the client
//! sent them, with their flags and dates, without a new-mail notice (the client put them
//! there). Several messages are checked first and stored in one write, all or none. The
//! literals' size is bounded by the wire (`max_message_bytes`, for all of one command's
//! messages together); the account's quota by the store: `NO [OVERQUOTA]`.

use chrono::Utc;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::StatusKind;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{MAX_FLAGS_PER_MESSAGE, MAX_MESSAGES_PER_APPEND, NewMessage};
use pushmail_core::message::check_shape;
use pushmail_core::types::{Address, now};
use pushmail_store::Delivery;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, bye, io, no_or_bad, tagged_raw};
use crate::state::{Imap, Session};
use crate::view::Expunges;
use crate::wire::Wire;

/// Why a message is not stored: the status and its text.
type Refusal = (StatusKind, String);

/// One message of an APPEND, as the client sent it.
pub(crate) struct Upload<'a> {
    pub flags: &'a [Flag<'a>],
    pub date: Option<&'a DateTime>,
    pub message: &'a LiteralOrLiteral8<'a>,
}

impl Upload<'_> {
    /// The message as stored, or why it may not be.
    fn checked(&self, session: &Session) -> std::result::Result<NewMessage, Refusal> {
        let raw = match self.message {
            LiteralOrLiteral8::Literal(literal) => literal.data(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.as_ref(),
        };
        if raw.is_empty() {
            return Err((StatusKind::Bad, "An empty message".into()));
        }
        if self.flags.len() > MAX_FLAGS_PER_MESSAGE {
            let text = "[LIMIT] Too many flags for one message";
            return Err((StatusKind::No, text.into()));
        }
        if let Err(why) = check_shape(raw) {
            return Err((StatusKind::No, format!("[LIMIT] The message has {why}")));
        }
        Ok(NewMessage {
            raw: raw.to_vec(),
            // \Recent is the server's to set (RFC 3501 §2.3.2); it is never stored.
            flags: self
                .flags
                .iter()
                .map(ToString::to_string)
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .collect(),
            internal_date: self
                .date
                .map(|date| date.as_ref().with_timezone(&Utc))
                .unwrap_or_else(now),
            // Stored only for the account this session logged in as, not for one created
            // again at its address since.
            owner_known_at: session.identity.as_ref().map(|identity| identity.known_at),
        })
    }
}

impl Imap {
    /// APPEND of one message.
    pub(crate) async fn append<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        upload: Upload<'_>,
    ) -> Result<()> {
        let message = match upload.checked(session) {
            Ok(message) => message,
            Err((kind, text)) => return no_or_bad(wire, tag, kind, &text).await,
        };
        self.store_appended(wire, session, account, tag, mailbox, &[message])
            .await
    }

    /// MULTIAPPEND: `appends` are the command's messages as one-message APPENDs, in order.
    pub(crate) async fn multi_append<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        appends: Vec<Command<'static>>,
    ) -> Result<()> {
        if appends.len() > MAX_MESSAGES_PER_APPEND {
            let text = format!("[LIMIT] At most {MAX_MESSAGES_PER_APPEND} messages in one APPEND");
            return no_or_bad(wire, tag, StatusKind::No, &text).await;
        }
        let mut mailbox = None;
        let mut messages = Vec::with_capacity(appends.len());
        for command in &appends {
            let CommandBody::Append {
                mailbox: name,
                flags,
                date,
                message,
            } = &command.body
            else {
                return no_or_bad(wire, tag, StatusKind::Bad, "Not an APPEND").await;
            };
            mailbox = Some(name);
            let upload = Upload {
                flags,
                date: date.as_ref(),
                message,
            };
            match upload.checked(session) {
                Ok(message) => messages.push(message),
                Err((kind, text)) => return no_or_bad(wire, tag, kind, &text).await,
            }
        }
        let Some(mailbox) = mailbox else {
            return no_or_bad(wire, tag, StatusKind::Bad, "No message").await;
        };
        self.store_appended(wire, session, account, tag, mailbox, &messages)
            .await
    }

    /// Stores the checked messages, all or none; APPENDUID tells their UIDs.
    async fn store_appended<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        messages: &[NewMessage],
    ) -> Result<()> {
        let Some(folder): Option<FolderName> = Self::resolve(session, mailbox) else {
            return no_or_bad(wire, tag, StatusKind::No, "[TRYCREATE] No such folder").await;
        };
        let quota = self.quota(account).await?;
        // Into the folder selected read-write: this session is the first told of the new
        // messages (at the end of this APPEND), so their `\Recent` is claimed with their write.
        let selected = session
            .selected
            .as_mut()
            .filter(|selected| selected.folder == folder && !selected.read_only);
        let stored = match selected {
            Some(selected) => {
                let (stored, claimed) = self
                    .store
                    .append_all_claiming_recent(account, &folder, messages, quota)
                    .await
                    .map_err(io)?;
                selected.recent.add(claimed);
                stored
            }
            None => self
                .store
                .append_all(account, &folder, messages, quota)
                .await
                .map_err(io)?,
        };
        match stored {
            Delivery::Stored {
                uid, uid_validity, ..
            } => {
                self.report_changes(wire, session, Expunges::Report).await?;
                let last = uid + (messages.len() as u32).saturating_sub(1);
                let uids = match last == uid {
                    true => uid.to_string(),
                    false => format!("{uid}:{last}"),
                };
                let text = format!("[APPENDUID {uid_validity} {uids}] APPEND done");
                tagged_raw(wire, &tag, "OK", &text).await
            }
            Delivery::NoSuchAccount => {
                bye(wire, "Account removed or changed; log in again").await?;
                Err(std::io::Error::other("the account is gone"))
            }
            Delivery::NoSuchFolder => {
                no_or_bad(wire, tag, StatusKind::No, "[TRYCREATE] No such folder").await
            }
            Delivery::OverQuota => {
                no_or_bad(wire, tag, StatusKind::No, "[OVERQUOTA] Over the quota").await
            }
        }
    }
}
