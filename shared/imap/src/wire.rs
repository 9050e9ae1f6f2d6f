//! IMAP on the wire: bytes framed into messages by imap-codec's `Fragmentizer` (literals
//! announced and bounded), decoded into commands; responses encoded by imap-codec. Nothing here
//! knows what a command means.

use std::io;

use imap_codec::encode::Encoder;
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest command, literals included, before login and for every command but APPEND.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A read between commands: most commands fit.
const SMALL_READ: usize = 128;
/// A read within a command (APPEND's literal).
const LARGE_READ: usize = 16 * 1024;

/// What the peer sent next.
pub enum Incoming {
    Command(Command<'static>),
    /// Not a command this server can read: answer BAD (with the tag when there is one).
    Bad(Option<Tag<'static>>, &'static str),
    /// The peer sent more than the bounds allow in a way the framing cannot skip (a
    /// non-synchronising literal over the bound is already on its way): say BYE and close.
    Overflow,
    Closed,
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
    /// The largest message (a command with its literals) taken now.
    limit: usize,
    /// A line over the bound is being thrown away up to its end; its tag, if it had one.
    discarding: Option<Option<Tag<'static>>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(connection: Connection<S>) -> Self {
        Self {
            connection,
            fragmentizer: Fragmentizer::without_max_message_size(),
            limit: MAX_MESSAGE,
            discarding: None,
        }
    }

    /// After login: messages (APPEND's literal) up to this many bytes, besides the command.
    pub fn allow_messages_of(&mut self, bytes: usize) {
        self.limit = MAX_MESSAGE.saturating_add(bytes);
    }

    pub fn into_connection(self) -> Connection<S> {
        self.connection
    }

    /// Reads until a whole message is there; a sync literal within the limit is invited with a
    /// continuation, one beyond it refused at once (the peer waits for the invitation, so
    /// nothing of it is read). A line over the limit is thrown away as it comes, so no peer
    /// makes this hold more than the limit and one read.
    async fn next_message(&mut self) -> io::Result<Framed> {
        loop {
            let Some(fragment) = self.fragmentizer.progress() else {
                if self.fragmentizer.message_bytes().len() > self.limit {
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
                return Ok(match announcement {
                    Some(_) => Framed::Overflow,
                    None => Framed::TooBig(tag),
                });
            }
            if let Some(LiteralAnnouncement { mode, length }) = announcement {
                let total = self.fragmentizer.message_bytes().len() + length as usize;
                if total > self.limit {
                    let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                    self.fragmentizer.skip_message();
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
                if self.fragmentizer.message_bytes().len() > self.limit {
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
        if self.fragmentizer.message_bytes().is_empty() && self.discarding.is_none() {
            // Nothing pending (progress() has taken every byte): drop the buffers' capacity.
            self.fragmentizer = Fragmentizer::without_max_message_size();
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

    pub async fn next_command(&mut self) -> io::Result<Incoming> {
        match self.next_message().await? {
            Framed::Closed => return Ok(Incoming::Closed),
            Framed::Overflow => return Ok(Incoming::Overflow),
            Framed::TooBig(tag) => return Ok(Incoming::Bad(tag, "Command or literal too big")),
            Framed::Message => {}
        }
        match self.fragmentizer.decode_message(&CommandCodec::default()) {
            Ok(command) => Ok(Incoming::Command(command.into_static())),
            Err(_) => {
                let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                Ok(Incoming::Bad(tag, "Syntax error"))
            }
        }
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
        let bytes = ResponseCodec::default().encode(response).dump();
        self.send_raw(&bytes).await
    }

    pub async fn greet(&mut self, greeting: &Greeting<'_>) -> io::Result<()> {
        let bytes = GreetingCodec::default().encode(greeting).dump();
        self.send_raw(&bytes).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.connection.write_all(bytes).await?;
        self.connection.flush().await
    }
}
