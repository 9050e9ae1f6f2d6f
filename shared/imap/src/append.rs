//! APPEND with UIDPLUS's APPENDUID: a message stored as the client sent it, with its flags and
//! date, without a new-mail notice (the client put it there). The literal's size is bounded
//! by the wire (`max_message_bytes`); the account's quota by the store: `NO [OVERQUOTA]`.

use chrono::Utc;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::StatusKind;
use pushmail_core::mailbox::{MAX_FLAGS_PER_MESSAGE, NewMessage};
use pushmail_core::message::check_shape;
use pushmail_core::types::{Address, now};
use pushmail_store::Delivery;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, bye, io, no_or_bad, tagged_raw};
use crate::state::{Imap, Session};
use crate::view::Expunges;
use crate::wire::Wire;

impl Imap {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn append<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        account: &Address,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        message: &LiteralOrLiteral8<'_>,
    ) -> Result<()> {
        let raw = match message {
            LiteralOrLiteral8::Literal(literal) => literal.data(),
            LiteralOrLiteral8::Literal8(literal) => literal.data.as_ref(),
        };
        if raw.is_empty() {
            return no_or_bad(wire, tag, StatusKind::Bad, "An empty message").await;
        }
        if flags.len() > MAX_FLAGS_PER_MESSAGE {
            let text = "[LIMIT] Too many flags for one message";
            return no_or_bad(wire, tag, StatusKind::No, text).await;
        }
        if let Err(why) = check_shape(raw) {
            let text = format!("[LIMIT] The message has {why}");
            return no_or_bad(wire, tag, StatusKind::No, &text).await;
        }
        let Some(folder) = Self::resolve(session, mailbox) else {
            return no_or_bad(wire, tag, StatusKind::No, "[TRYCREATE] No such folder").await;
        };
        let message = NewMessage {
            raw: raw.to_vec(),
            // \Recent is the server's to set (RFC 3501 §2.3.2); it is never stored.
            flags: flags
                .iter()
                .map(ToString::to_string)
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .collect(),
            internal_date: date
                .map(|date| date.as_ref().with_timezone(&Utc))
                .unwrap_or_else(now),
            // Stored only for the account this session logged in as, not for one created
            // again at its address since.
            owner_known_at: session.identity.as_ref().map(|identity| identity.known_at),
        };
        let quota = self.quota(account).await?;
        let stored = self
            .store
            .append(account, &folder, &message, quota)
            .await
            .map_err(io)?;
        match stored {
            Delivery::Stored {
                uid, uid_validity, ..
            } => {
                self.report_changes(wire, session, Expunges::Report).await?;
                let text = format!("[APPENDUID {uid_validity} {uid}] APPEND done");
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
