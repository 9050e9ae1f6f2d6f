//! MAIL FROM and RCPT TO (the envelope), and the EHLO answer that says what may follow.

use std::net::SocketAddr;

use pushmail_core::types::Address;

use crate::reply::{self, Enhanced, Reply};
use crate::session::{Role, Session, Smtp};

impl Smtp {
    /// The EHLO answer: AUTH only where it may be used, STARTTLS until TLS is on.
    pub(crate) fn capabilities(&self, session: &Session, peer: SocketAddr) -> Reply {
        let mut lines = vec![
            self.settings.hostname.clone(),
            format!("SIZE {}", self.settings.max_message_bytes),
            "PIPELINING".into(),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.tls.is_some() && !session.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed(session, peer) && session.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        Reply::lines(250, &lines)
    }

    /// Checks MAIL FROM: inbound takes any sender; submission only the authenticated account.
    pub(crate) fn sender(&self, session: &mut Session, from: &str, size: usize) -> Reply {
        if session.helo.is_none() {
            return Reply::new(503, Enhanced(5, 5, 1), "Say EHLO first");
        }
        if session.envelope.from.is_some() {
            return Reply::new(503, Enhanced(5, 5, 1), "A transaction is already open");
        }
        if size > self.settings.max_message_bytes {
            return reply::MESSAGE_TOO_BIG;
        }
        if self.role == Role::Submission {
            let Some(user) = &session.user else {
                return Reply::new(530, Enhanced(5, 7, 0), "Authentication required");
            };
            if !Address::parse(from).is_ok_and(|from| user.may_send_as(&from)) {
                return Reply::formatted(
                    553,
                    Enhanced(5, 7, 1),
                    format!(
                        "Sender address must be {}, the account you logged in as, or one of its aliases",
                        user.address
                    ),
                );
            }
        }
        session.envelope.from = Some(from.to_string());
        session.envelope.size = size;
        Reply::new(250, Enhanced(2, 1, 0), "Sender OK")
    }

    /// Checks one RCPT: a local account, or (submission only) any other domain.
    pub(crate) async fn recipient(&self, session: &mut Session, raw: &str) -> Reply {
        let envelope = &mut session.envelope;
        if envelope.from.is_none() {
            return reply::MAIL_FIRST;
        }
        if envelope.rcpts >= self.settings.max_recipients {
            return Reply::new(452, Enhanced(4, 5, 3), "Too many recipients");
        }
        envelope.rcpts += 1;
        // RFC 5321 §4.5.1: `postmaster` (bare, or at a local domain) is always taken, for
        // the account the admin named. (smtp-proto hands a bare `<postmaster>` over as the
        // empty address, which RCPT has no other use for.)
        let bare = raw.is_empty() || raw.eq_ignore_ascii_case("postmaster");
        let postmaster = bare
            || raw
                .rsplit_once('@')
                .is_some_and(|(local, _)| local.eq_ignore_ascii_case("postmaster"));
        // Quoted local parts, percent hacks and source routes are not addresses of ours.
        let parsed = match Address::parse(raw) {
            Ok(address) => Some(address),
            Err(_) if bare => None,
            Err(_) => return reply::NO_SUCH_USER,
        };
        let local_domain = match &parsed {
            Some(address) => self
                .store
                .domain(&address.domain())
                .await
                .map(|d| d.is_some()),
            None => Ok(true),
        };
        if postmaster && matches!(local_domain, Ok(true)) {
            let Some(account) = self.settings.postmaster.clone() else {
                return Reply::new(550, Enhanced(5, 1, 1), "No postmaster is set up here");
            };
            return self.take_local(session, account).await;
        }
        let Some(address) = parsed else {
            return reply::NO_SUCH_USER;
        };
        match local_domain {
            Ok(true) => {}
            Ok(false) if self.role == Role::Submission && self.outgoing.is_none() => {
                return Reply::new(
                    550,
                    Enhanced(5, 7, 1),
                    "No relay is configured for mail to other domains",
                );
            }
            Ok(false) if self.role == Role::Submission => {
                let envelope = &mut session.envelope;
                if !envelope.remote.contains(&address) {
                    envelope.remote.push(address);
                }
                return reply::RECIPIENT_OK;
            }
            Ok(false) => return Reply::new(550, Enhanced(5, 7, 1), "Relaying denied"),
            Err(_) => return reply::TRY_LATER,
        }
        self.take_local(session, address).await
    }

    /// A local recipient: an enabled account whose mailbox can take the announced size.
    async fn take_local(&self, session: &mut Session, address: Address) -> Reply {
        let envelope = &mut session.envelope;
        match self.store.account(&address).await {
            Ok(Some(account)) if account.enabled => {
                if envelope.local.iter().any(|known| known.address == address) {
                    return reply::RECIPIENT_OK;
                }
                // Told now, not after DATA: a mailbox that cannot take the message (at its
                // announced size, or at all) is refused here, for this recipient alone.
                match self.has_room(&account, envelope.size.max(1)).await {
                    Ok(true) => {}
                    Ok(false) => return Reply::new(552, Enhanced(5, 2, 2), "Mailbox full"),
                    Err(_) => return reply::TRY_LATER,
                }
                envelope.local.push(account);
                reply::RECIPIENT_OK
            }
            Ok(_) => reply::NO_SUCH_USER,
            Err(_) => reply::TRY_LATER,
        }
    }
}
