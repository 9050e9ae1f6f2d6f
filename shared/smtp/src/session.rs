//! One SMTP conversation, in either role: inbound (mail for the local domains' accounts, each
//! recipient checked, no relaying, no AUTH) or submission (the device's mail: AUTH after
//! STARTTLS, MAIL FROM the account itself, any recipient). 250 after DATA only once the message
//! is durable wherever it goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_core::message::check_shape;
use pushmail_core::types::{Account, Address};
use pushmail_store::Store;
use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use crate::outgoing::Outgoing;
use crate::wire::{Line, MAX_COMMAND_LINE, read_line};
use pushmail_listener::{Connection, Departure};

/// Which listener a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25's job: mail from anywhere for local accounts only.
    Inbound,
    /// Port 587's job: mail from authenticated accounts to anywhere.
    Submission,
}

/// What a listener allows.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The name this server gives itself in its greeting and Received headers.
    pub hostname: String,
    /// The largest message accepted, in octets (announced as SIZE).
    pub max_message_bytes: usize,
    /// Recipients of one message; more are answered 452 4.5.3.
    pub max_recipients: usize,
    /// How long the peer may stay silent.
    pub idle_timeout: Duration,
    /// Submission: AUTH without TLS is allowed from loopback peers (local tests, `--demo`).
    pub plaintext_auth_on_loopback: bool,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            hostname: "pushmail.local".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
            plaintext_auth_on_loopback: false,
        }
    }
}

/// A listener's role with everything its sessions share.
pub struct Smtp {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: SmtpSettings,
    pub(crate) role: Role,
    tls: Option<TlsAcceptor>,
    /// Where submitted mail for other domains goes (submission only).
    pub(crate) outgoing: Option<Arc<Outgoing>>,
    /// Told when a delivery recorded a new-mail notice (the dispatcher's wake-up).
    pub(crate) noticed: Option<Arc<tokio::sync::Notify>>,
    /// Told which account's mailbox a delivery changed (IMAP idlers, here and elsewhere).
    pub(crate) changed: Option<pushmail_core::hints::ChangeHints>,
}

/// Why a session ended.
pub(crate) enum End {
    Quit,
    Closed,
    Idle,
}

/// The state of one conversation.
#[derive(Default)]
pub(crate) struct Session {
    pub helo: Option<String>,
    /// The authenticated account (submission).
    pub user: Option<Account>,
    pub tls: bool,
    pub envelope: Envelope,
}

/// One transaction's envelope.
#[derive(Default)]
pub(crate) struct Envelope {
    pub from: Option<String>,
    /// Each accepted local recipient (its quota and filing rules with it).
    pub local: Vec<Account>,
    /// Accepted recipients elsewhere (submission only).
    pub remote: Vec<Address>,
    /// The size MAIL FROM announced (RFC 1870), 0 if none: a recipient whose mailbox cannot
    /// take it is refused at RCPT.
    pub size: usize,
}

impl Envelope {
    pub fn recipients(&self) -> usize {
        self.local.len() + self.remote.len()
    }
}

/// What a command asks of the loop beyond its answer.
enum Next {
    StartTls,
    End(End),
}

impl Smtp {
    pub fn inbound(store: Arc<dyn Store>, settings: SmtpSettings) -> Self {
        Self {
            store,
            settings,
            role: Role::Inbound,
            tls: None,
            outgoing: None,
            noticed: None,
            changed: None,
        }
    }

    /// The submission role; without `outgoing` (no relay configured) mail to other domains
    /// is refused at RCPT.
    pub fn submission(
        store: Arc<dyn Store>,
        settings: SmtpSettings,
        outgoing: Option<Arc<Outgoing>>,
    ) -> Self {
        Self {
            store,
            settings,
            role: Role::Submission,
            tls: None,
            outgoing,
            noticed: None,
            changed: None,
        }
    }

    /// Offers STARTTLS with this certificate.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Wakes `noticed` whenever a delivery records a new-mail notice.
    pub fn with_notice_hint(mut self, noticed: Arc<tokio::sync::Notify>) -> Self {
        self.noticed = Some(noticed);
        self
    }

    /// Hints each account whose mailbox a delivery changed to `changed`.
    pub fn with_change_hint(mut self, changed: pushmail_core::hints::ChangeHints) -> Self {
        self.changed = Some(changed);
        self
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Runs one conversation to its end.
    pub async fn converse<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.converse_leaving(stream, peer, Departure::default())
            .await
    }

    /// Runs one conversation to its end, giving its source place back before the last reply.
    pub async fn converse_leaving<S>(&self, stream: S, peer: SocketAddr, mut departure: Departure)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut io = BufReader::new(Connection::Plain(stream));
        let greeting = format!("220 {} ESMTP pushmail\r\n", self.settings.hostname);
        if io.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        let mut session = Session::default();
        let end = loop {
            match self.commands(&mut io, &mut session, peer).await {
                Ok(Next::StartTls) => {
                    let Some(acceptor) = &self.tls else { return };
                    // Whatever the peer pipelined after STARTTLS was sent in the clear: it is
                    // dropped with the buffer, never read as if it came over TLS.
                    match Connection::start_tls(io, acceptor).await {
                        Ok(tls) => io = BufReader::new(tls),
                        Err(error) => {
                            tracing::info!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                    }
                    // RFC 3207 §4.2: the session starts over.
                    session = Session {
                        tls: true,
                        ..Session::default()
                    };
                }
                Ok(Next::End(end)) => break Ok(end),
                Err(error) => break Err(error),
            }
        };
        let farewell: &[u8] = match end {
            Ok(End::Quit) => b"221 2.0.0 Bye\r\n",
            Ok(End::Idle) => b"421 4.4.2 Idle too long; closing\r\n",
            Ok(End::Closed) | Err(_) => return,
        };
        departure.leave();
        let _ = io.write_all(farewell).await;
        let _ = io.flush().await;
    }

    /// Answers commands until the session ends or TLS starts.
    async fn commands<S>(
        &self,
        io: &mut BufReader<Connection<S>>,
        session: &mut Session,
        peer: SocketAddr,
    ) -> std::io::Result<Next>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let Ok(line) =
                tokio::time::timeout(self.settings.idle_timeout, read_line(io, MAX_COMMAND_LINE))
                    .await
            else {
                return Ok(Next::End(End::Idle));
            };
            let mut line = match line? {
                Line::Closed => return Ok(Next::End(End::Closed)),
                Line::TooLong { .. } => {
                    reply(io, "500 5.5.2 Line too long").await?;
                    continue;
                }
                Line::BareLineEnding(_) => {
                    reply(io, "500 5.5.2 Lines must end with CRLF").await?;
                    continue;
                }
                Line::Complete(line) => line,
            };
            line.extend_from_slice(b"\r\n");
            let request = match Request::parse(&mut line.iter()) {
                Ok(request) => request,
                Err(smtp_proto::Error::UnknownCommand) => {
                    reply(io, "500 5.5.1 Unknown command").await?;
                    continue;
                }
                Err(_) => {
                    reply(io, "501 5.5.4 Syntax error in parameters").await?;
                    continue;
                }
            };
            match request {
                Request::Ehlo { host } => {
                    session.helo = Some(host.to_string());
                    session.envelope = Envelope::default();
                    reply(io, &self.capabilities(session, peer)).await?;
                }
                Request::Helo { host } => {
                    session.helo = Some(host.to_string());
                    session.envelope = Envelope::default();
                    reply(io, &format!("250 {}", self.settings.hostname)).await?;
                }
                Request::StartTls => {
                    if session.tls {
                        reply(io, "503 5.5.1 TLS is already on").await?;
                    } else if self.tls.is_none() {
                        reply(io, "502 5.5.1 STARTTLS is not offered here").await?;
                    } else {
                        reply(io, "220 2.0.0 Ready to start TLS").await?;
                        return Ok(Next::StartTls);
                    }
                }
                Request::Auth {
                    mechanism,
                    initial_response,
                } => {
                    let answer = self
                        .authenticate(io, session, peer, mechanism, &initial_response)
                        .await?;
                    reply(io, &answer).await?;
                }
                Request::Mail { from } => {
                    let answer = self.sender(session, &from.address, from.size);
                    reply(io, &answer).await?;
                }
                Request::Rcpt { to } => {
                    let answer = self.recipient(session, &to.address).await;
                    reply(io, answer).await?;
                }
                Request::Data => {
                    let envelope = &session.envelope;
                    if envelope.from.is_none() {
                        reply(io, "503 5.5.1 MAIL first").await?;
                    } else if envelope.recipients() == 0 {
                        reply(io, "554 5.5.1 No valid recipients").await?;
                    } else {
                        reply(io, "354 End data with <CR><LF>.<CR><LF>").await?;
                        let answer = match self.read_message(io).await? {
                            Ok(message) => match check_shape(&message) {
                                Ok(()) => self.accept_message(session, message, peer).await,
                                Err(why) => format!("552 5.3.4 The message has {why}"),
                            },
                            Err(refusal) => refusal.to_owned(),
                        };
                        session.envelope = Envelope::default();
                        reply(io, &answer).await?;
                    }
                }
                Request::Rset => {
                    session.envelope = Envelope::default();
                    reply(io, "250 2.0.0 OK").await?;
                }
                Request::Noop { .. } => reply(io, "250 2.0.0 OK").await?,
                Request::Vrfy { .. } => {
                    reply(io, "252 2.5.0 Cannot verify; send the mail").await?;
                }
                Request::Quit => return Ok(Next::End(End::Quit)),
                _ => reply(io, "502 5.5.1 Command not implemented").await?,
            }
        }
    }

    /// The EHLO answer: AUTH only where it may be used, STARTTLS until TLS is on.
    fn capabilities(&self, session: &Session, peer: SocketAddr) -> String {
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
    fn sender(&self, session: &mut Session, from: &str, size: usize) -> String {
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
    async fn recipient(&self, session: &mut Session, raw: &str) -> &'static str {
        let envelope = &mut session.envelope;
        if envelope.from.is_none() {
            return "503 5.5.1 MAIL first";
        }
        if envelope.recipients() >= self.settings.max_recipients {
            return "452 4.5.3 Too many recipients";
        }
        // Quoted local parts, percent hacks and source routes are not addresses of ours.
        let Ok(address) = Address::parse(raw) else {
            return "550 5.1.1 No such user here";
        };
        match self.store.domain(&address.domain()).await {
            Ok(Some(_)) => {}
            Ok(None) if self.role == Role::Submission && self.outgoing.is_none() => {
                return "550 5.7.1 No relay is configured for mail to other domains";
            }
            Ok(None) if self.role == Role::Submission => {
                if !envelope.remote.contains(&address) {
                    envelope.remote.push(address);
                }
                return "250 2.1.5 Recipient OK";
            }
            Ok(None) => return "550 5.7.1 Relaying denied",
            Err(_) => return "451 4.3.0 Temporary failure; try again later",
        }
        match self.store.account(&address).await {
            Ok(Some(account)) if account.enabled => {
                if envelope.local.iter().any(|known| known.address == address) {
                    return "250 2.1.5 Recipient OK";
                }
                // Told now, not after DATA: a mailbox that cannot take the message (at its
                // announced size, or at all) is refused here, for this recipient alone.
                if let Some(quota) = account.quota_bytes {
                    match self.store.mailbox_usage(&address).await {
                        Ok(used) if used.saturating_add(envelope.size.max(1) as u64) > quota => {
                            return "552 5.2.2 Mailbox full";
                        }
                        Ok(_) => {}
                        Err(_) => return "451 4.3.0 Temporary failure; try again later",
                    }
                }
                envelope.local.push(account);
                "250 2.1.5 Recipient OK"
            }
            Ok(_) => "550 5.1.1 No such user here",
            Err(_) => "451 4.3.0 Temporary failure; try again later",
        }
    }
}

/// Sends one reply in one write: two small writes would wait on each other (Nagle's algorithm
/// against the peer's delayed ACK, 40 ms a reply).
impl pushmail_listener::Conversation for Smtp {
    fn converse(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        departure: Departure,
    ) -> impl Future<Output = ()> + Send {
        Smtp::converse_leaving(self, stream, peer, departure)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections from your address\r\n"
    }

    fn protocol(&self) -> &'static str {
        "smtp"
    }
}

pub(crate) async fn reply<W: AsyncWrite + Unpin>(
    writer: &mut W,
    text: &str,
) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(text.len() + 2);
    line.extend_from_slice(text.as_bytes());
    line.extend_from_slice(b"\r\n");
    writer.write_all(&line).await?;
    writer.flush().await
}
