//! One IMAP session (RFC 3501): greeting, the state machine (not authenticated, authenticated,
//! selected), and the commands of the first state. The others are dispatched in `commands.rs`
//! to a file per command group.

use std::net::SocketAddr;
use std::sync::Arc;

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;
use imap_codec::imap_types::extensions::sort::SortAlgorithm;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{Capability, Code, Data, Greeting, Response, StatusKind};
use pushmail_core::counts::Counts;
use pushmail_core::hints::ChangeHints;
use pushmail_core::sasl::parse_plain;
use pushmail_listener::Connection;
use pushmail_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::reply::{Result, bye, named, no_or_bad, ok, send_status};
use crate::state::{Imap, ImapSettings, Needs, Next, Session};
use crate::summaries::Summaries;
use crate::watch::Watched;
use crate::wire::{Incoming, Wire};

/// What the wait for a command brought: a command or not, `Err` if nothing came in time
/// (autologout), `None` if the listener is closing.
type Read = Option<std::result::Result<Result<Incoming>, tokio::time::error::Elapsed>>;

enum Waited {
    Idle(Tag<'static>),
    Other(Box<Read>),
}

/// What the process's sessions keep of messages' structure between FETCHes, at most
/// (`summaries.rs`): a few thousand ordinary messages'.
const SUMMARIES_BUDGET: usize = 32 * 1024 * 1024;

impl Imap {
    pub fn new(store: Arc<dyn Store>, settings: ImapSettings, hints: ChangeHints) -> Self {
        Self {
            store,
            settings,
            tls: None,
            hints,
            closing: tokio::sync::watch::channel(false).0,
            implicit_tls: false,
            slots: Arc::new(Counts::default()),
            appends: Arc::new(Counts::default()),
            compressed: Arc::new(Counts::default()),
            summaries: Arc::new(Summaries::new(SUMMARIES_BUDGET)),
        }
    }

    /// Counts sessions per account together with `other` (IMAP and IMAPS of one process).
    pub fn sharing_limits_with(mut self, other: &Imap) -> Self {
        self.slots = other.slots.clone();
        self.appends = other.appends.clone();
        self.compressed = other.compressed.clone();
        self
    }

    /// The same listener with TLS from the first byte (IMAPS): needs `with_tls`.
    pub fn implicit_tls(mut self) -> Self {
        self.implicit_tls = true;
        self
    }

    /// Tells every session to end (RFC 3501 §7.1.5: an untagged BYE), and new ones too.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Completes when the listener is closing, at once if it already is. Small: every waiting
    /// session holds one.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut closing = self.closing.subscribe();
        async move {
            while !*closing.borrow_and_update() {
                if closing.changed().await.is_err() {
                    // The listener is gone without closing: nothing will ever close it.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    pub(crate) fn login_allowed(&self, session: &Session) -> bool {
        session.tls
            || (self.settings.plaintext_login_on_loopback && session.peer.ip().is_loopback())
    }

    pub(crate) fn capabilities(&self, session: &Session) -> Vec1<Capability<'static>> {
        // LITERAL+ (RFC 7888) before login too: the framing takes non-synchronising literals
        // within the same bound as any other.
        let mut capabilities = vec![Capability::Imap4Rev1, Capability::LiteralPlus];
        if session.user.is_none() {
            if self.tls.is_some() && !session.tls {
                capabilities.push(Capability::StartTls);
            }
            if self.login_allowed(session) {
                capabilities.extend([Capability::Auth(AuthMechanism::Plain), Capability::SaslIr]);
            } else {
                capabilities.push(Capability::LoginDisabled);
            }
        } else {
            capabilities.extend([
                Capability::Idle,
                Capability::Unselect,
                Capability::UidPlus,
                Capability::Move,
                named("CHILDREN"),
                named("SPECIAL-USE"),
                Capability::Id,
                Capability::Namespace,
                Capability::Enable,
                Capability::CondStore,
                Capability::QResync,
                Capability::Compress {
                    algorithm: CompressionAlgorithm::Deflate,
                },
                named("ESEARCH"),
                Capability::Binary,
                named("MULTIAPPEND"),
                named("LIST-EXTENDED"),
                named("LIST-STATUS"),
                named("NOTIFY"),
                Capability::Sort(None),
                Capability::Sort(Some(SortAlgorithm::Display)),
                Capability::Thread(ThreadingAlgorithm::OrderedSubject),
                Capability::Thread(ThreadingAlgorithm::References),
            ]);
        }
        Vec1::try_from(capabilities).expect("IMAP4rev1 is always there")
    }

    /// Runs one session to its end.
    pub async fn converse<S: AsyncRead + AsyncWrite + Unpin>(&self, stream: S, peer: SocketAddr) {
        let mut connection = Connection::Plain(stream);
        if self.implicit_tls {
            let Some(acceptor) = &self.tls else { return };
            connection = match Box::pin(Connection::start_tls(
                tokio::io::BufReader::new(connection),
                acceptor,
            ))
            .await
            {
                Ok(tls) => tls,
                Err(error) => {
                    info!(%peer, %error, "IMAPS handshake failed");
                    return;
                }
            };
        }
        let mut wire = Wire::new(connection);
        let mut session = Session {
            tls: self.implicit_tls,
            user: None,
            aliases: Vec::new(),
            selected: None,
            peer,
            condstore: false,
            qresync: false,
            slot: None,
            compressed: None,
            identity: None,
            login_by: tokio::time::Instant::now() + self.settings.login_timeout,
            search_return: None,
            watch: None,
        };
        // Boxed, as every step but the wait between commands: see `commands`.
        let capabilities = self.capabilities(&session);
        let greeted = Box::pin(async {
            match Greeting::ok(Some(Code::Capability(capabilities)), "pushmail IMAP ready") {
                Ok(greeting) => wire.greet(&greeting).await.is_ok(),
                Err(_) => false,
            }
        })
        .await;
        if !greeted {
            return;
        }
        loop {
            let next = self.commands(&mut wire, &mut session).await;
            // Answers are queued until the session waits for its peer (`Wire::flush`): what
            // comes next (the TLS handshake, compression, the end) follows what was answered.
            if wire.flush().await.is_err() {
                return;
            }
            match next {
                Ok(Next::StartTls) => {
                    let Some(acceptor) = &self.tls else { return };
                    // Anything pipelined after STARTTLS came in the clear: dropped with the
                    // framing state, never read as if it came over TLS.
                    match Box::pin(Connection::start_tls(
                        tokio::io::BufReader::new(wire.into_connection()),
                        acceptor,
                    ))
                    .await
                    {
                        Ok(tls) => wire = Wire::new(tls),
                        Err(error) => {
                            info!(%peer, %error, "IMAP TLS handshake failed");
                            return;
                        }
                    }
                    session.tls = true;
                }
                Ok(Next::Compress) => wire = wire.deflate(),
                Ok(Next::Continue) => {}
                Ok(Next::Logout) | Err(_) => return,
            }
        }
    }

    /// The session's life between greeting and end. Every step runs boxed, at its own size,
    /// while it runs: the wait for the next command as much as the answer to it, so a session
    /// in IDLE (what every push-service session does for hours) holds IDLE's state and not
    /// also the other wait's.
    async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
    ) -> Result<Next> {
        loop {
            let limit = if session.user.is_some() {
                self.settings.idle_timeout
            } else {
                session
                    .login_by
                    .saturating_duration_since(tokio::time::Instant::now())
            };
            if session.watch.is_some()
                && let Watched::Ended(next) = Box::pin(self.watching(wire, session, limit)).await?
            {
                return Ok(next);
            }
            let selected = session.selected.is_some();
            let next = match Box::pin(self.next_command(wire, limit, selected)).await {
                Waited::Idle(tag) => Box::pin(self.idle(wire, session, tag)).await?,
                Waited::Other(read) => Box::pin(self.answer(wire, session, *read)).await?,
            };
            match next {
                Next::Continue => {}
                next => return Ok(next),
            }
        }
    }

    /// The next command, IDLE (in a selected folder) told apart: the caller holds only its tag
    /// while IDLE lasts, not a whole command.
    async fn next_command<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        limit: std::time::Duration,
        selected: bool,
    ) -> Waited {
        let read = tokio::select! {
            read = tokio::time::timeout(limit, wire.next_command()) => Some(read),
            () = self.closed() => None,
        };
        match read {
            Some(Ok(Ok(Incoming::Command(command))))
                if selected && matches!(command.body, CommandBody::Idle) =>
            {
                Waited::Idle(command.tag)
            }
            read => Waited::Other(Box::new(read)),
        }
    }

    /// What the wait for a command brought: a command (run), nothing in time (autologout),
    /// or the listener closing (`None`).
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        read: Read,
    ) -> Result<Next> {
        let incoming = match read {
            None => {
                Box::pin(bye(wire, "Server shutting down")).await?;
                return Ok(Next::Logout);
            }
            Some(Ok(incoming)) => incoming?,
            Some(Err(_)) => {
                Box::pin(bye(wire, "Autologout; idle for too long")).await?;
                return Ok(Next::Logout);
            }
        };
        /// What was read: a command imap-codec reads (with ESEARCH's RETURN options), or one
        /// it does not.
        enum Request {
            Read(Command<'static>, Option<crate::esearch::Returns>),
            Extended(Tag<'static>, crate::wire::Extended),
        }
        let request = match incoming {
            Incoming::Closed => return Ok(Next::Logout),
            Incoming::Overflow => {
                Box::pin(bye(wire, "Literal too big")).await?;
                return Ok(Next::Logout);
            }
            Incoming::Bad(tag, why) => {
                Box::pin(send_status(wire, tag, StatusKind::Bad, None, why)).await?;
                return Ok(Next::Continue);
            }
            Incoming::BadEvent(tag) => {
                Box::pin(self.bad_event(wire, tag)).await?;
                return Ok(Next::Continue);
            }
            Incoming::Command(command) => Request::Read(command, None),
            Incoming::SearchReturning(command, returns) => Request::Read(command, Some(returns)),
            Incoming::Extended(tag, command) => Request::Extended(tag, command),
        };
        if !Box::pin(self.still_the_same_account(session)).await {
            Box::pin(bye(wire, "Account removed or changed; log in again")).await?;
            return Ok(Next::Logout);
        }
        let (command, returns) = match request {
            Request::Read(command, returns) => (command, returns),
            Request::Extended(tag, command) => {
                return Box::pin(self.extended(wire, session, tag, command)).await;
            }
        };
        // The largest command's state is held only while it runs.
        session.search_return = returns;
        let next = Box::pin(self.command(wire, session, command)).await;
        session.search_return = None;
        next
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        command: Command<'static>,
    ) -> Result<Next> {
        let tag = command.tag;
        if let Some(why) = session.refusal(Needs::of(&command.body)) {
            no_or_bad(wire, tag, StatusKind::Bad, why).await?;
            return Ok(Next::Continue);
        }
        match command.body {
            CommandBody::Capability => {
                let data = Data::Capability(self.capabilities(session));
                wire.send(&Response::Data(data)).await?;
                ok(wire, tag, "CAPABILITY done").await?;
            }
            CommandBody::Logout => {
                bye(wire, "Logging out").await?;
                ok(wire, tag, "LOGOUT done").await?;
                return Ok(Next::Logout);
            }
            CommandBody::StartTLS => {
                if session.tls || self.tls.is_none() {
                    no_or_bad(wire, tag, StatusKind::Bad, "STARTTLS is not available now").await?;
                } else {
                    ok(wire, tag, "Begin TLS negotiation now").await?;
                    return Ok(Next::StartTls);
                }
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if mechanism != AuthMechanism::Plain {
                    no_or_bad(wire, tag, StatusKind::No, "Only AUTHENTICATE PLAIN").await?;
                } else if !self.login_allowed(session) {
                    // Checked before any exchange, as LOGIN is.
                    self.login(wire, session, tag, "", "").await?;
                } else {
                    let response = match initial_response {
                        Some(data) => Some(data.declassify().to_vec()),
                        None => {
                            wire.send_raw(b"+ \r\n").await?;
                            wire.authenticate_data().await?
                        }
                    };
                    match response.as_deref().and_then(parse_plain) {
                        Some((login, password)) => {
                            self.login(wire, session, tag, &login, &password).await?;
                        }
                        None => {
                            no_or_bad(
                                wire,
                                tag,
                                StatusKind::Bad,
                                "AUTHENTICATE cancelled or malformed",
                            )
                            .await?;
                        }
                    }
                }
            }
            CommandBody::Login { username, password } => {
                let username = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                self.login(wire, session, tag, &username, &password).await?;
            }
            CommandBody::Id { .. } => {
                wire.send_raw(b"* ID (\"name\" \"pushmail\")\r\n").await?;
                ok(wire, tag, "ID done").await?;
            }
            // Valid in every state (RFC 3501 §6.1): before login it has nothing to report.
            CommandBody::Noop if session.user.is_none() => {
                ok(wire, tag, "NOOP done").await?;
            }
            body => return self.authenticated(wire, session, tag, body).await,
        }
        Ok(Next::Continue)
    }
}

impl Imap {
    /// Whether the logged-in account is still the one the session logged in as
    /// (`Identity::still_holds`); true before login.
    pub(crate) async fn still_the_same_account(&self, session: &mut Session) -> bool {
        match (&session.user, &mut session.identity) {
            (Some(user), Some(identity)) => {
                identity
                    .still_holds(self.store.as_ref(), user, session.peer)
                    .await
            }
            _ => true,
        }
    }
}

impl pushmail_listener::Conversation for Imap {
    fn converse(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        departure: pushmail_listener::Departure,
    ) -> impl Future<Output = ()> + Send {
        let session = Imap::converse(self, stream, peer);
        // Held for the whole session (a push service idles for hours), given back at its end.
        async move {
            session.await;
            drop(departure);
        }
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"* BYE Too many connections from your address\r\n"
    }

    fn protocol(&self) -> &'static str {
        "imap"
    }
}
