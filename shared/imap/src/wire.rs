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

/// The largest command, literals included (no APPEND yet: commands are short).
pub const MAX_MESSAGE: u32 = 64 * 1024;

/// What the peer sent next.
pub enum Incoming {
    Command(Command<'static>),
    /// Not a command this server can read: answer BAD (with the tag when there is one).
    Bad(Option<Tag<'static>>, &'static str),
    Closed,
}

enum Framed {
    Message,
    /// A literal over the bound: skipped, with the command's tag if it could be read.
    TooBig(Option<Tag<'static>>),
    Closed,
}

pub struct Wire<S> {
    pub(crate) connection: Connection<S>,
    fragmentizer: Fragmentizer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub fn new(connection: Connection<S>) -> Self {
        Self {
            connection,
            fragmentizer: Fragmentizer::new(MAX_MESSAGE),
        }
    }

    pub fn into_connection(self) -> Connection<S> {
        self.connection
    }

    /// Reads until a whole message is there; a sync literal within the limit is invited with a
    /// continuation, one beyond it refused at once (the peer waits for the invitation, so
    /// nothing of it is read).
    async fn next_message(&mut self) -> io::Result<Framed> {
        loop {
            let Some(fragment) = self.fragmentizer.progress() else {
                let mut buffer = [0u8; 4096];
                let read = self.connection.read(&mut buffer).await?;
                if read == 0 {
                    return Ok(Framed::Closed);
                }
                self.fragmentizer.enqueue_bytes(&buffer[..read]);
                continue;
            };
            if let FragmentInfo::Line {
                announcement: Some(LiteralAnnouncement { mode, length }),
                ..
            } = fragment
            {
                if length > MAX_MESSAGE || self.fragmentizer.is_max_message_size_exceeded() {
                    let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
                    self.fragmentizer.skip_message();
                    return Ok(Framed::TooBig(tag));
                }
                if mode == LiteralMode::Sync {
                    self.send_raw(b"+ Ready for literal data\r\n").await?;
                }
            }
            if self.fragmentizer.is_message_complete() {
                return Ok(Framed::Message);
            }
        }
    }

    pub async fn next_command(&mut self) -> io::Result<Incoming> {
        match self.next_message().await? {
            Framed::Closed => return Ok(Incoming::Closed),
            Framed::TooBig(tag) => return Ok(Incoming::Bad(tag, "Literal too big")),
            Framed::Message => {}
        }
        if self.fragmentizer.is_max_message_size_exceeded() {
            let tag = self.fragmentizer.decode_tag().map(IntoStatic::into_static);
            return Ok(Incoming::Bad(tag, "Command too long"));
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
