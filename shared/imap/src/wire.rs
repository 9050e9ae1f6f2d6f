//! IMAP on the wire: bytes framed into messages by imap-codec's `Fragmentizer` (literals
//! announced and bounded), decoded into commands; responses encoded by imap-codec. Nothing here
//! knows what a command means.

use std::io;
use std::sync::Arc;

use pushmail_core::counts::{Counts, Place};
use pushmail_core::types::Address;

use imap_codec::decode::Decoder;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer, LiteralAnnouncement};
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::imap_types::response::{Greeting, Response};
use imap_codec::{
    AuthenticateDataCodec, CommandCodec, GreetingCodec, IdleDoneCodec, ResponseCodec,
};
use pushmail_listener::Connection;

use crate::list_request::{ListRequest, Parsed};
use crate::notify::{NotifyRequest, Refused};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest command, literals included, before login and for every command but APPEND;
/// APPEND's message literal aside, its other bytes too.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// APPENDs of one account whose large literal may be on its way at once (the account's other
/// sessions wait for a place: a `NO` to try again, their literal never invited). With the
/// message limit this bounds what one account's uploads hold in memory: 2 × 25 MiB.
pub const APPENDS_IN_FLIGHT_PER_ACCOUNT: usize = 2;

/// A read between commands: most commands fit.
const SMALL_READ: usize = 128;
/// A read within a command (APPEND's literal).
const LARGE_READ: usize = 16 * 1024;
/// Answers are gathered and written when the session next waits for its peer, or once this
/// much is waiting: a FETCH of a hundred messages is a few writes, not a hundred (profiling
/// showed the kernel's send path a sixth of a command's cost, one write per line).
const WRITE_AT: usize = 64 * 1024;

/// What the peer sent next.
pub enum Incoming {
    Command(Command<'static>),
    /// A SEARCH with ESEARCH's RETURN clause (which imap-codec does not read), and what it
    /// asked for.
    SearchReturning(Command<'static>, crate::esearch::Returns),
    /// A command imap-codec does not read, read with the generic syntax; with its tag.
    Extended(Tag<'static>, Extended),
    /// NOTIFY naming an event this server does not tell of: `NO [BADEVENT …]`.
    BadEvent(Tag<'static>),
    /// Not a command this server can read: answer BAD (with the tag when there is one).
    Bad(Option<Tag<'static>>, &'static str),
    /// The peer sent more than the bounds allow in a way the framing cannot skip (a
    /// non-synchronising literal over the bound is already on its way): say BYE and close.
    Overflow,
    Closed,
}

/// The commands read with the generic syntax (`syntax.rs`), all for a logged-in session.
pub enum Extended {
    /// MULTIAPPEND: one APPEND per message, in order.
    MultiAppend(Vec<Command<'static>>),
    /// LIST-EXTENDED's LIST.
    List(Box<ListRequest>),
    Notify(Box<NotifyRequest>),
}

/// What lets APPEND's message literal past [`MAX_MESSAGE`].
struct AppendGate {
    bytes: usize,
    places: Arc<Counts<Address>>,
    account: Address,
    /// The place of the upload being read.
    held: Option<Place<Address>>,
}

/// Whether a command's first line is an APPEND (`<tag> APPEND `).
fn is_append(message: &[u8]) -> bool {
    let mut words = message.splitn(3, |&b| b == b' ');
    let _tag = words.next();
    words
        .next()
        .is_some_and(|command| command.eq_ignore_ascii_case(b"APPEND"))
}

enum Framed {
    Message,
    /// A command or literal over the bound: skipped, with the command's tag if it was read.
    TooBig(Option<Tag<'static>>),
    Overflow,
    Closed,
}

pub struct Wire<S> {
    pub(crate) connection: Connection<S>,
    /// Unbounded itself: the bounds are ours (`limit`), checked after every read, so they can
    /// grow after login, for APPEND.
    fragmentizer: Fragmentizer,
    /// After login: the largest message APPEND may upload, and the places its account's
    /// uploads share (boxed: an idle session holds one pointer for it).
    appends: Option<Box<AppendGate>>,
    /// The size of the APPEND literals taken in the message being read (0 if none): the
    /// message may be that much over [`MAX_MESSAGE`].
    allowance: usize,
    /// A line over the bound is being thrown away up to its end; its tag, if it had one.
    discarding: Option<Option<Tag<'static>>>,
    /// A fragment the framing found while `waiting_for_command` looked (a pipelined command):
    /// the next read takes it first.
    primed: Option<FragmentInfo>,
    /// Answers not yet written, from `written` on (an empty `Vec` while nothing waits, so an
    /// idle session holds no buffer).
    out: Vec<u8>,
    written: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(connection: Connection<S>) -> Self {
        Self {
            connection,
            fragmentizer: Fragmentizer::without_max_message_size(),
            appends: None,
            allowance: 0,
            discarding: None,
            primed: None,
            out: Vec::new(),
            written: 0,
        }
    }

    /// After login: APPEND's message literal may be up to `bytes` (exactly), while the
    /// account holds a place for it in `places`.
    pub fn allow_messages_of(
        &mut self,
        bytes: usize,
        places: Arc<Counts<Address>>,
        account: Address,
    ) {
        self.appends = Some(Box::new(AppendGate {
            bytes,
            places,
            account,
            held: None,
        }));
    }

    fn limit(&self) -> usize {
        MAX_MESSAGE.saturating_add(self.allowance)
    }

    /// The message read last is done with (answered, or skipped): its allowance and its
    /// upload place go.
    fn message_done(&mut self) {
        self.allowance = 0;
        if let Some(gate) = &mut self.appends {
            gate.held = None;
        }
    }

    /// Whether a literal of `length` may come as one of APPEND's messages: the command is an
    /// APPEND, its messages' literals (MULTIAPPEND sends several) are within the message limit
    /// together (exactly), and the account has an upload place free (one for the command).
    fn admit_append_literal(&mut self, length: usize) -> bool {
        let Some(gate) = &mut self.appends else {
            return false;
        };
        if length > gate.bytes.saturating_sub(self.allowance)
            || !is_append(self.fragmentizer.message_bytes())
        {
            return false;
        }
        if gate.held.is_none() {
            let Some(place) = gate
                .places
                .enter(gate.account.clone(), APPENDS_IN_FLIGHT_PER_ACCOUNT)
            else {
                return false;
            };
            gate.held = Some(place);
        }
        self.allowance += length;
        true
    }

    /// COMPRESS=DEFLATE from here on (RFC 4978), the bounds kept. Anything the peer sent
    /// after the command, before it could have read the OK, is dropped, as after STARTTLS.
    pub fn deflate(self) -> Self {
        Self {
            connection: self.connection.deflate(),
            fragmentizer: Fragmentizer::without_max_message_size(),
            discarding: None,
            primed: None,
            ..self
        }
    }

    pub fn is_deflated(&self) -> bool {
        self.connection.is_deflated()
    }

    pub fn into_connection(self) -> Connection<S> {
        self.connection
    }

    /// Reads until a whole message is there; a sync literal within the limit is invited with a
    /// continuation, one beyond it refused at once (the peer waits for the invitation, so
    /// nothing of it is read). A line over the limit is thrown away as it comes, so no peer
    /// makes this hold more than the limit and one read.
    async fn next_message(&mut self) -> io::Result<Framed> {
        // The last message's upload place is held until now: through the command that stored
        // it, not only while its bytes came in.
        self.message_done();
        loop {
            let Some(fragment) = self.primed.take().or_else(|| self.fragmentizer.progress()) else {
                if self.fragmentizer.message_bytes().len() > self.limit() {
                    if self.discarding.is_none() {
                        let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                        self.discarding = Some(tag);
                    }
                    self.fragmentizer.skip_message();
                }
                if self.read_more().await? == 0 {
                    return Ok(Framed::Closed);
                }
                continue;
            };
            let announcement = match fragment {
                FragmentInfo::Line { announcement, .. } => announcement,
                FragmentInfo::Literal { .. } => None,
            };
            if let Some(tag) = self.discarding.take() {
                // The end of the overlong line: it had a literal after all (cannot be skipped
                // safely), or the command is answered BAD.
                self.fragmentizer.skip_message();
                self.message_done();
                return Ok(match announcement {
                    Some(_) => Framed::Overflow,
                    None => Framed::TooBig(tag),
                });
            }
            if let Some(LiteralAnnouncement { mode, length }) = announcement {
                let total = self.fragmentizer.message_bytes().len() + length as usize;
                if total > self.limit() && !self.admit_append_literal(length as usize) {
                    let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                    self.fragmentizer.skip_message();
                    self.message_done();
                    return Ok(match mode {
                        LiteralMode::Sync => Framed::TooBig(tag),
                        // Its bytes are coming anyway and would be read as commands.
                        LiteralMode::NonSync => Framed::Overflow,
                    });
                }
                if mode == LiteralMode::Sync {
                    self.send_raw(b"+ Ready for literal data\r\n").await?;
                }
            }
            if self.fragmentizer.is_message_complete() {
                if self.fragmentizer.message_bytes().len() > self.limit() {
                    let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                    self.fragmentizer.skip_message();
                    return Ok(Framed::TooBig(tag));
                }
                return Ok(Framed::Message);
            }
        }
    }

    /// Reads what the peer sent into the framing. Between commands, where an idle session waits
    /// for hours, the wait holds only a small buffer and a fresh (empty) framer, so an idle
    /// session costs little memory; within a command (a literal coming) reads are larger.
    async fn read_more(&mut self) -> io::Result<usize> {
        // The peer may be waiting for what was answered before it sends more.
        self.flush().await?;
        if self.fragmentizer.message_bytes().is_empty() && self.discarding.is_none() {
            // Nothing pending (progress() has taken every byte): drop the buffers' capacity,
            // and a compressor if COMPRESS is on.
            self.fragmentizer = Fragmentizer::without_max_message_size();
            self.connection.rest();
            let mut buffer = [0u8; SMALL_READ];
            let read = self.connection.read(&mut buffer).await?;
            self.fragmentizer.enqueue_bytes(&buffer[..read]);
            Ok(read)
        } else {
            let mut buffer = vec![0u8; LARGE_READ];
            let read = self.connection.read(&mut buffer).await?;
            self.fragmentizer.enqueue_bytes(&buffer[..read]);
            Ok(read)
        }
    }

    /// Whether the peer has sent nothing of a next command yet (no pipelined command waits,
    /// no part of one): then [`fill`](Self::fill) may wait for it alongside something else.
    pub fn waiting_for_command(&mut self) -> bool {
        if self.primed.is_some() || self.discarding.is_some() {
            return false;
        }
        match self.fragmentizer.progress() {
            Some(fragment) => {
                self.primed = Some(fragment);
                false
            }
            None => self.fragmentizer.message_bytes().is_empty(),
        }
    }

    /// Waits for bytes of the next command and takes them into the framing (0: the peer
    /// closed). Cancel-safe: a wait given up loses nothing. Only when
    /// [`waiting_for_command`](Self::waiting_for_command).
    pub async fn fill(&mut self) -> io::Result<usize> {
        self.read_more().await
    }

    pub async fn next_command(&mut self) -> io::Result<Incoming> {
        match self.next_message().await? {
            Framed::Closed => return Ok(Incoming::Closed),
            Framed::Overflow => return Ok(Incoming::Overflow),
            Framed::TooBig(tag) => return Ok(Incoming::Bad(tag, "Command or literal too big")),
            Framed::Message => {}
        }
        match self.fragmentizer.decode_message(&CommandCodec::default()) {
            Ok(command) => Ok(Incoming::Command(command.into_static())),
            Err(_)
                if let Some((rest, returns)) =
                    crate::esearch::strip_return(self.fragmentizer.message_bytes()) =>
            {
                match CommandCodec::default().decode(&rest) {
                    Ok(([], command)) => {
                        Ok(Incoming::SearchReturning(command.into_static(), returns))
                    }
                    _ => {
                        let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                        Ok(Incoming::Bad(tag, "Syntax error"))
                    }
                }
            }
            Err(_) => Ok(self.extended()),
        }
    }

    /// A command imap-codec cannot read, read with the generic syntax if it is one of the
    /// extensions' (`syntax.rs`), else BAD.
    fn extended(&self) -> Incoming {
        let message = self.fragmentizer.message_bytes();
        if let Some(line) = crate::syntax::parse(message) {
            if let Some(parsed) = ListRequest::extended(&line) {
                return match parsed {
                    Parsed::List(tag, request) => {
                        Incoming::Extended(tag, Extended::List(Box::new(request)))
                    }
                    Parsed::Bad(tag, why) => Incoming::Bad(Some(tag), why),
                };
            }
            if let Some((tag, appends)) = crate::syntax::appends(&line, message) {
                return Incoming::Extended(tag, Extended::MultiAppend(appends));
            }
            if let Some((tag, request)) = NotifyRequest::read(&line) {
                return match request {
                    Ok(request) => Incoming::Extended(tag, Extended::Notify(Box::new(request))),
                    Err(Refused::Bad(why)) => Incoming::Bad(Some(tag), why),
                    Err(Refused::BadEvent) => Incoming::BadEvent(tag),
                };
            }
        }
        let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
        Incoming::Bad(tag, "Syntax error")
    }

    /// During AUTHENTICATE: the client's response, `None` if it cancelled (`*`) or sent
    /// something that is not one.
    pub async fn authenticate_data(&mut self) -> io::Result<Option<Vec<u8>>> {
        if !matches!(self.next_message().await?, Framed::Message) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed during AUTHENTICATE",
            ));
        }
        Ok(
            match self
                .fragmentizer
                .decode_message(&AuthenticateDataCodec::default())
            {
                Ok(AuthenticateData::Continue(data)) => Some(data.declassify().to_vec()),
                _ => None,
            },
        )
    }

    /// During IDLE: true when the peer sent DONE, false if it sent something else or closed.
    pub async fn idle_done(&mut self) -> io::Result<bool> {
        if !matches!(self.next_message().await?, Framed::Message) {
            return Ok(false);
        }
        Ok(self
            .fragmentizer
            .decode_message(&IdleDoneCodec::default())
            .is_ok())
    }

    pub async fn send(&mut self, response: &Response<'_>) -> io::Result<()> {
        let encoded = ResponseCodec::default().encode(response);
        if self.out.is_empty() {
            // Taken as it is rather than copied: most answers are one response.
            self.out = encoded.dump();
        } else {
            // Each fragment straight into the queue: no buffer of its own for the response
            // (a FETCH answers with one per message).
            for fragment in encoded {
                match fragment {
                    Fragment::Line { data } | Fragment::Literal { data, .. } => {
                        self.out.extend_from_slice(&data);
                    }
                }
            }
        }
        self.write_if_full().await
    }

    /// Queues `bytes`, taken as they are when nothing else waits to be written.
    pub async fn send_owned(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        if self.out.is_empty() {
            self.out = bytes;
        } else {
            self.out.extend_from_slice(&bytes);
        }
        self.write_if_full().await
    }

    pub async fn greet(&mut self, greeting: &Greeting<'_>) -> io::Result<()> {
        let bytes = GreetingCodec::default().encode(greeting).dump();
        self.send_raw(&bytes).await
    }

    /// Queues `bytes`; written once the session waits for its peer ([`flush`](Self::flush)),
    /// or at once when [`WRITE_AT`] is waiting.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(bytes);
        self.write_if_full().await
    }

    async fn write_if_full(&mut self) -> io::Result<()> {
        if self.out.len() - self.written >= WRITE_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes every answer queued; nothing (not even the connection's own flush, a compressor's
    /// sync block) when none is. Cancel-safe (a wait for the peer can be given up while this
    /// runs): what was written is counted as it goes, and the queue is let go only once the
    /// connection is flushed, so the rest is done next time.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        while let Some(rest) = self.out.get(self.written..).filter(|rest| !rest.is_empty()) {
            let wrote = self.connection.write(rest).await?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.written += wrote;
        }
        self.connection.flush().await?;
        // Freed, not kept: a session between commands holds no buffer.
        self.out = Vec::new();
        self.written = 0;
        Ok(())
    }
}
