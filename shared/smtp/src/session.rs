//! One SMTP conversation, in either role: inbound (mail for the local domains' accounts, each
//! recipient checked, no relaying, no AUTH) or submission (the device's mail: AUTH after
//! STARTTLS, MAIL FROM the account itself, any recipient). 250 after DATA only once the message
//! is durable wherever it goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pushmail_core::hints::Arrivals;
use pushmail_core::message::check_shape;
use pushmail_core::types::{Account, Address};
use pushmail_store::Store;
use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

use crate::budget::DataBudget;
use crate::outgoing::Outgoing;
use crate::reply::{self, Enhanced, Reply};
use crate::shed::Idlers;
use crate::wire::{Line, MAX_COMMAND_LINE, read_line};
use pushmail_listener::{Connection, Departure};

/// Messages being received at once hold at most this much memory by default (192 MiB: seven
/// of the largest at once; more are answered 452 4.3.1 and sent again later).
pub const DEFAULT_DATA_BUDGET: usize = 192 * 1024 * 1024;

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
    /// Error answers (4xx, 5xx) a session may get before each further one comes a second
    /// late, and at which it is closed (Postfix's smtpd_soft_error_limit and
    /// smtpd_hard_error_limit): unknown recipients count, so a directory harvest costs time.
    pub soft_error_limit: u32,
    pub hard_error_limit: u32,
    /// Folders an account may have: a filing rule creates none past it (IMAP CREATE keeps
    /// the same limit).
    pub max_folders: usize,
    /// With more sessions than this open (in the listener), each new one ends the session
    /// that has waited longest outside a transaction (421, Postfix's stress mode).
    pub shed_above: usize,
    /// How long the peer may stay silent before it opens a transaction (MAIL FROM): an idle
    /// connection holds a place other clients need.
    pub idle_before_mail: Duration,
    /// Submission: AUTH without TLS is allowed from loopback peers (local tests, `--demo`).
    pub plaintext_auth_on_loopback: bool,
    /// The account that mail for `postmaster` (bare, or at any local domain) goes to; none:
    /// such mail is refused.
    pub postmaster: Option<Address>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            hostname: "pushmail.local".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
            idle_before_mail: Duration::from_secs(60),
            max_folders: pushmail_core::mailbox::MAX_FOLDERS,
            // Three quarters of the listener's default 256 sessions.
            shed_above: 192,
            soft_error_limit: 10,
            hard_error_limit: 20,
            plaintext_auth_on_loopback: false,
            postmaster: None,
        }
    }
}

/// A listener's role with everything its sessions share.
pub struct Smtp {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: SmtpSettings,
    pub(crate) role: Role,
    pub(crate) tls: Option<TlsAcceptor>,
    /// Where submitted mail for other domains goes (submission only).
    pub(crate) outgoing: Option<Arc<Outgoing>>,
    /// Told of each message stored: the notice dispatcher and the IMAP sessions.
    pub(crate) arrivals: Arrivals,
    /// The memory all sessions' messages may hold at once (shared by the roles given one).
    pub(crate) data_budget: DataBudget,
    /// Sessions open and those idle outside a transaction, for shedding.
    idlers: Arc<Idlers>,
}

/// Why a session ended.
pub(crate) enum End {
    Quit,
    Closed,
    Idle,
    TooManyErrors,
    /// Shed to make room (see `shed.rs`).
    Shed,
}

/// The state of one conversation.
#[derive(Default)]
pub(crate) struct Session {
    pub helo: Option<String>,
    /// The authenticated account (submission).
    pub user: Option<Account>,
    pub tls: bool,
    pub envelope: Envelope,
    /// Error answers so far (see `SmtpSettings::soft_error_limit`).
    pub errors: u32,
}

/// One transaction's envelope.
#[derive(Default)]
pub(crate) struct Envelope {
    pub from: Option<String>,
    /// Each accepted local recipient (its quota and filing rules with it).
    pub local: Vec<Account>,
    /// Accepted recipients elsewhere (submission only).
    pub remote: Vec<Address>,
    /// RCPT commands in this transaction, refused and repeated ones too: the recipient limit
    /// bounds the commands (each costs store reads), not only the recipients taken.
    pub rcpts: usize,
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
            arrivals: Arrivals::default(),
            data_budget: DataBudget::new(DEFAULT_DATA_BUDGET),
            idlers: Arc::default(),
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
            arrivals: Arrivals::default(),
            data_budget: DataBudget::new(DEFAULT_DATA_BUDGET),
            idlers: Arc::default(),
        }
    }

    /// Shares `budget` for messages held in memory (give both roles the same one).
    pub fn with_data_budget(mut self, budget: DataBudget) -> Self {
        self.data_budget = budget;
        self
    }

    /// Offers STARTTLS with this certificate.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Tells `arrivals` of each message stored.
    pub fn with_arrivals(mut self, arrivals: Arrivals) -> Self {
        self.arrivals = arrivals;
        self
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
        let _open = self.idlers.open(self.settings.shed_above);
        let mut io = BufReader::new(Connection::Plain(stream));
        let greeting = Reply::bare(220, format!("{} ESMTP pushmail", self.settings.hostname));
        if io.write_all(&greeting.to_wire()).await.is_err() {
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
        let farewell = match end {
            Ok(End::Quit) => Reply::new(221, Enhanced(2, 0, 0), "Bye"),
            Ok(End::Idle) => Reply::new(421, Enhanced(4, 4, 2), "Idle too long; closing"),
            Ok(End::TooManyErrors) => {
                Reply::new(421, Enhanced(4, 7, 0), "Too many errors; closing")
            }
            Ok(End::Shed) => Reply::new(421, Enhanced(4, 7, 0), "Server busy; try again later"),
            Ok(End::Closed) | Err(_) => return,
        };
        departure.leave();
        let _ = io.write_all(&farewell.to_wire()).await;
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
            // Before a transaction a silent peer holds a place for less long.
            let silence = match session.envelope.from {
                None => self
                    .settings
                    .idle_timeout
                    .min(self.settings.idle_before_mail),
                Some(_) => self.settings.idle_timeout,
            };
            // Outside a transaction the session may be shed when the listener is full.
            let waiting = session
                .envelope
                .from
                .is_none()
                .then(|| self.idlers.waiting());
            let shed = async {
                match &waiting {
                    Some(waiting) => waiting.shed.notified().await,
                    None => std::future::pending().await,
                }
            };
            let line = tokio::select! {
                line = tokio::time::timeout(silence, read_line(io, MAX_AUTH_COMMAND_LINE)) => line,
                () = shed => return Ok(Next::End(End::Shed)),
            };
            drop(waiting);
            let Ok(line) = line else {
                return Ok(Next::End(End::Idle));
            };
            // Every answer, refusals of the line itself too, goes out (and counts) in one place.
            let answer: Reply = 'answer: {
                let mut line = match line? {
                    Line::Closed => return Ok(Next::End(End::Closed)),
                    Line::TooLong { .. } => break 'answer reply::LINE_TOO_LONG,
                    // A bare LF splits what the peer meant as one line: the rest of it would run
                    // as a command of its own. Closed, not resynchronised.
                    Line::BareLineEnding(_) => {
                        send(io, &reply::BARE_LINE_ENDING).await?;
                        return Ok(Next::End(End::Closed));
                    }
                    Line::Complete(line) => line,
                };
                // Only AUTH's initial response may be longer than a command (RFC 4954 §4).
                if line.len() + 2 > MAX_COMMAND_LINE && !starts_with_word(&line, b"AUTH") {
                    break 'answer reply::LINE_TOO_LONG;
                }
                line.extend_from_slice(b"\r\n");
                let request = match Request::parse(&mut line.iter()) {
                    Ok(request) => request,
                    Err(smtp_proto::Error::UnknownCommand) => {
                        break 'answer Reply::new(500, Enhanced(5, 5, 1), "Unknown command");
                    }
                    Err(_) => {
                        break 'answer Reply::new(
                            501,
                            Enhanced(5, 5, 4),
                            "Syntax error in parameters",
                        );
                    }
                };
                match request {
                    Request::Ehlo { host } => {
                        session.helo = Some(host.to_string());
                        session.envelope = Envelope::default();
                        self.capabilities(session, peer)
                    }
                    Request::Helo { host } => {
                        session.helo = Some(host.to_string());
                        session.envelope = Envelope::default();
                        Reply::bare(250, self.settings.hostname.clone())
                    }
                    Request::StartTls => {
                        if session.tls {
                            Reply::new(503, Enhanced(5, 5, 1), "TLS is already on")
                        } else if self.tls.is_none() {
                            Reply::new(502, Enhanced(5, 5, 1), "STARTTLS is not offered here")
                        } else {
                            send(
                                io,
                                &Reply::new(220, Enhanced(2, 0, 0), "Ready to start TLS"),
                            )
                            .await?;
                            return Ok(Next::StartTls);
                        }
                    }
                    Request::Auth {
                        mechanism,
                        initial_response,
                    } => {
                        self.authenticate(io, session, peer, mechanism, &initial_response)
                            .await?
                    }
                    Request::Mail { from } => self.sender(session, &from.address, from.size),
                    Request::Rcpt { to } => self.recipient(session, &to.address).await,
                    Request::Data => {
                        let envelope = &session.envelope;
                        if envelope.from.is_none() {
                            reply::MAIL_FIRST
                        } else if envelope.recipients() == 0 {
                            Reply::new(554, Enhanced(5, 5, 1), "No valid recipients")
                        } else if self.role == Role::Inbound && !io.buffer().is_empty() {
                            // The message sent before 354 (RFC 2920 §3.1: DATA ends a pipelined
                            // group): whatever it holds is not read as commands. Closed, as
                            // Postfix 3.9 does for unauthenticated clients.
                            let early = "Data sent before the 354 reply; closing";
                            send(io, &Reply::new(554, Enhanced(5, 5, 0), early)).await?;
                            return Ok(Next::End(End::Closed));
                        } else {
                            send(io, &Reply::bare(354, "End data with <CR><LF>.<CR><LF>")).await?;
                            let answer = match self.read_message(io).await? {
                                Ok(held) => match check_shape(&held.message) {
                                    Ok(()) => self.accept_message(session, held, peer).await,
                                    Err(why) => Reply::formatted(
                                        552,
                                        Enhanced(5, 3, 4),
                                        format!("The message has {why}"),
                                    ),
                                },
                                Err(refusal) => refusal,
                            };
                            session.envelope = Envelope::default();
                            answer
                        }
                    }
                    Request::Rset => {
                        session.envelope = Envelope::default();
                        reply::OK
                    }
                    Request::Noop { .. } => reply::OK,
                    Request::Vrfy { .. } => {
                        Reply::new(252, Enhanced(2, 5, 0), "Cannot verify; send the mail")
                    }
                    Request::Quit => return Ok(Next::End(End::Quit)),
                    // Its chunk would follow at once and be read as commands: closed.
                    Request::Bdat { .. } => {
                        send(
                            io,
                            &Reply::new(503, Enhanced(5, 5, 1), "BDAT is not offered; closing"),
                        )
                        .await?;
                        return Ok(Next::End(End::Closed));
                    }
                    _ => Reply::new(502, Enhanced(5, 5, 1), "Command not implemented"),
                }
            };
            if !self.answer(io, session, &answer).await? {
                return Ok(Next::End(End::TooManyErrors));
            }
        }
    }
}

/// AUTH's line may carry an initial response of 12,288 octets (RFC 4954 §4).
const MAX_AUTH_COMMAND_LINE: usize = 12_288 + 64;

/// Whether `line` starts with the command `word` (any case) and a space or its end.
fn starts_with_word(line: &[u8], word: &[u8]) -> bool {
    line.len() >= word.len()
        && line[..word.len()].eq_ignore_ascii_case(word)
        && line.get(word.len()).is_none_or(|&b| b == b' ')
}

impl Smtp {
    /// Sends an answer, counting it if it is an error: past the soft error limit each error
    /// waits a second first; at the hard limit the answer is the last (`false`).
    async fn answer<S>(
        &self,
        io: &mut BufReader<Connection<S>>,
        session: &mut Session,
        answer: &Reply,
    ) -> std::io::Result<bool>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if answer.is_error() {
            session.errors += 1;
            if session.errors > self.settings.soft_error_limit {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        send(io, answer).await?;
        Ok(session.errors < self.settings.hard_error_limit)
    }
}

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

/// Sends one reply in one write: two small writes would wait on each other (Nagle's algorithm
/// against the peer's delayed ACK, 40 ms a reply).
/// Refusals are counted by their kind ("550 5.1.1"), never their words.
pub(crate) async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    reply: &Reply,
) -> std::io::Result<()> {
    if reply.is_error() {
        metrics::counter!(pushmail_core::metric_names::SMTP_REFUSALS, "code" => reply.kind())
            .increment(1);
    }
    writer.write_all(&reply.to_wire()).await?;
    writer.flush().await
}
