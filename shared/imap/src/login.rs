//! LOGIN and AUTHENTICATE's end: the password checked on `store::credentials` (the limits,
//! the verified-login cache), the account's session places taken, its identity kept.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, StatusKind};
use pushmail_core::types::quoted;
use pushmail_store::Surface;
use pushmail_store::credentials::{CredentialError, check_login};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, warn};

use crate::identity::Identity;
use crate::reply::{Result, no_or_bad, send_status};
use crate::state::{Imap, Session};
use crate::wire::Wire;

impl Imap {
    pub(crate) async fn login<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
        username: &str,
        password: &str,
    ) -> Result<()> {
        if session.user.is_some() {
            return no_or_bad(wire, tag, StatusKind::Bad, "Already logged in").await;
        }
        if !self.login_allowed(session) {
            return no_or_bad(
                wire,
                tag,
                StatusKind::No,
                "LOGIN is disabled before STARTTLS",
            )
            .await;
        }
        let checked = check_login(
            self.store.as_ref(),
            Surface::Imap,
            username,
            password,
            session.peer.ip(),
        )
        .await;
        match checked {
            Ok(account) => {
                let limit = self.settings.max_sessions_per_account;
                let Some(slot) = self.slots.enter(account.address.clone(), limit) else {
                    info!(peer = %session.peer, account = %account.address, "IMAP login: too many sessions");
                    let text = format!("[LIMIT] At most {limit} sessions at once for one account");
                    return no_or_bad(wire, tag, StatusKind::No, &text).await;
                };
                session.slot = Some(slot);
                session.identity = Some(Identity::of(&account));
                info!(peer = %session.peer, account = %account.address, "IMAP login");
                session.aliases = self.folder_aliases(&account.address).await?;
                wire.allow_messages_of(
                    self.settings.max_message_bytes,
                    self.appends.clone(),
                    account.address.clone(),
                );
                session.user = Some(account.address);
                let code = Code::Capability(self.capabilities(session));
                send_status(wire, Some(tag), StatusKind::Ok, Some(code), "Logged in").await
            }
            Err(CredentialError::BadCredentials) => {
                info!(peer = %session.peer, login = %quoted(username), "IMAP login failed");
                no_or_bad(wire, tag, StatusKind::No, "Authentication failed").await
            }
            Err(error) => {
                warn!(peer = %session.peer, %error, "IMAP login refused");
                // RFC 5530's codes: a busy server, or a limit reached.
                let text = match error {
                    CredentialError::Busy => "[UNAVAILABLE] Busy checking passwords; try again",
                    CredentialError::Store(_) => "[UNAVAILABLE] Try again later",
                    _ => "[LIMIT] Too many attempts; try again later",
                };
                no_or_bad(wire, tag, StatusKind::No, text).await
            }
        }
    }
}
