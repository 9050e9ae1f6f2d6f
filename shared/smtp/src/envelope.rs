//! MAIL FROM and RCPT TO (the envelope), and the EHLO answer that says what may follow.

use std::net::SocketAddr;

use pushmail_core::types::Address;

use crate::session::{Role, Session, Smtp};

impl Smtp {
    /// The EHLO answer: AUTH only where it may be used, STARTTLS until TLS is on.
    pub(crate) fn capabilities(&self, session: &Session, peer: SocketAddr) -> String {
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
        let last = lines.len() - 1;
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("250{}{line}", if i == last { ' ' } else { '-' }))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    /// Checks MAIL FROM: inbound takes any sender; submission only the authenticated account.
    pub(crate) fn sender(&self, session: &mut Session, from: &str, size: usize) -> String {
        if session.helo.is_none() {
            return "503 5.5.1 Say EHLO first".into();
        }
        if session.envelope.from.is_some() {
            return "503 5.5.1 A transaction is already open".into();
        }
        if size > self.settings.max_message_bytes {
            return "552 5.3.4 Message too big".into();
        }
        if self.role == Role::Submission {
            let Some(user) = &session.user else {
                return "530 5.7.0 Authentication required".into();
            };
            if !Address::parse(from).is_ok_and(|from| user.may_send_as(&from)) {
                return format!(
                    "553 5.7.1 Sender address must be {}, the account you logged in as, or one of its aliases",
                    user.address
                );
            }
        }
        session.envelope.from = Some(from.to_string());
        session.envelope.size = size;
        "250 2.1.0 Sender OK".into()
    }

    /// Checks one RCPT: a local account, or (submission only) any other domain.
    pub(crate) async fn recipient(&self, session: &mut Session, raw: &str) -> &'static str {
        let envelope = &mut session.envelope;
        if envelope.from.is_none() {
            return "503 5.5.1 MAIL first";
        }
        if envelope.rcpts >= self.settings.max_recipients {
            return "452 4.5.3 Too many recipients";
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
            Err(_) => return "550 5.1.1 No such user here",
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
                return "550 5.1.1 No postmaster is set up here";
            };
            return self.take_local(session, account).await;
        }
        let Some(address) = parsed else {
            return "550 5.1.1 No such user here";
        };
        match local_domain {
            Ok(true) => {}
            Ok(false) if self.role == Role::Submission && self.outgoing.is_none() => {
                return "550 5.7.1 No relay is configured for mail to other domains";
            }
            Ok(false) if self.role == Role::Submission => {
                let envelope = &mut session.envelope;
                if !envelope.remote.contains(&address) {
                    envelope.remote.push(address);
                }
                return "250 2.1.5 Recipient OK";
            }
            Ok(false) => return "550 5.7.1 Relaying denied",
            Err(_) => return "451 4.3.0 Temporary failure; try again later",
        }
        self.take_local(session, address).await
    }

    /// A local recipient: an enabled account whose mailbox can take the announced size.
    async fn take_local(&self, session: &mut Session, address: Address) -> &'static str {
        let envelope = &mut session.envelope;
        match self.store.account(&address).await {
            Ok(Some(account)) if account.enabled => {
                if envelope.local.iter().any(|known| known.address == address) {
                    return "250 2.1.5 Recipient OK";
                }
                // Told now, not after DATA: a mailbox that cannot take the message (at its
                // announced size, or at all) is refused here, for this recipient alone.
                match self.has_room(&account, envelope.size.max(1)).await {
                    Ok(true) => {}
                    Ok(false) => return "552 5.2.2 Mailbox full",
                    Err(_) => return "451 4.3.0 Temporary failure; try again later",
                }
                envelope.local.push(account);
                "250 2.1.5 Recipient OK"
            }
            Ok(_) => "550 5.1.1 No such user here",
            Err(_) => "451 4.3.0 Temporary failure; try again later",
        }
    }
}
