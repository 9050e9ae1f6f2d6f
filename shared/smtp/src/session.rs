//! One SMTP conversation in the inbound role: mail for the local domains' accounts, each
//! recipient checked, no relaying, and 250 after DATA only once the message is durably in every
//! recipient's INBOX.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::types::Address;
use pushmail_store::{Delivery, Store};
use smtp_proto::Request;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

use crate::wire::{Line, MAX_COMMAND_LINE, MAX_TEXT_LINE, read_line};

/// What the inbound role allows.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// The name this server gives itself in its greeting and Received headers.
    pub hostname: String,
    /// The largest message accepted, in octets (announced as SIZE).
    pub max_message_bytes: usize,
    /// Recipients of one message; more are answered 452 4.5.3.
    pub max_recipients: usize,
    /// How long the peer may stay silent.
    pub idle_timeout: Duration,
}

impl Default for InboundSettings {
    fn default() -> Self {
        Self {
            hostname: "pushmail.local".into(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 100,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The inbound role, shared by every session.
pub struct Inbound {
    store: Arc<dyn Store>,
    settings: InboundSettings,
}

/// Why a session ended early.
enum End {
    Quit,
    Closed,
    Idle,
}

/// One transaction's envelope.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    /// Each accepted recipient, with its mailbox quota.
    recipients: Vec<(Address, Option<u64>)>,
}

impl Inbound {
    pub fn new(store: Arc<dyn Store>, settings: InboundSettings) -> Self {
        Self { store, settings }
    }

    pub fn settings(&self) -> &InboundSettings {
        &self.settings
    }

    /// Runs one conversation to its end.
    pub async fn converse<R, W>(&self, mut reader: R, mut writer: W, peer: SocketAddr)
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let greeting = format!("220 {} ESMTP pushmail\r\n", self.settings.hostname);
        if writer.write_all(greeting.as_bytes()).await.is_err() {
            return;
        }
        let end = self.commands(&mut reader, &mut writer, peer).await;
        let farewell: &[u8] = match end {
            Ok(End::Quit) => b"221 2.0.0 Bye\r\n",
            Ok(End::Idle) => b"421 4.4.2 Idle too long; closing\r\n",
            Ok(End::Closed) | Err(_) => return,
        };
        let _ = writer.write_all(farewell).await;
        let _ = writer.flush().await;
    }

    async fn commands<R, W>(
        &self,
        reader: &mut R,
        writer: &mut W,
        peer: SocketAddr,
    ) -> std::io::Result<End>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut helo: Option<String> = None;
        let mut envelope = Envelope::default();
        loop {
            let Ok(line) = tokio::time::timeout(
                self.settings.idle_timeout,
                read_line(reader, MAX_COMMAND_LINE),
            )
            .await
            else {
                return Ok(End::Idle);
            };
            let mut line = match line? {
                Line::Closed => return Ok(End::Closed),
                Line::TooLong => {
                    reply(writer, "500 5.5.2 Line too long").await?;
                    continue;
                }
                Line::BareLineEnding(_) => {
                    reply(writer, "500 5.5.2 Lines must end with CRLF").await?;
                    continue;
                }
                Line::Complete(line) => line,
            };
            line.extend_from_slice(b"\r\n");
            let request = match Request::parse(&mut line.iter()) {
                Ok(request) => request,
                Err(smtp_proto::Error::UnknownCommand) => {
                    reply(writer, "500 5.5.1 Unknown command").await?;
                    continue;
                }
                Err(_) => {
                    reply(writer, "501 5.5.4 Syntax error in parameters").await?;
                    continue;
                }
            };
            match request {
                Request::Ehlo { host } => {
                    helo = Some(host.to_string());
                    envelope = Envelope::default();
                    let capabilities = format!(
                        "250-{}\r\n250-SIZE {}\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                         250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8",
                        self.settings.hostname, self.settings.max_message_bytes
                    );
                    reply(writer, &capabilities).await?;
                }
                Request::Helo { host } => {
                    helo = Some(host.to_string());
                    envelope = Envelope::default();
                    reply(writer, &format!("250 {}", self.settings.hostname)).await?;
                }
                Request::Mail { from } => {
                    if helo.is_none() {
                        reply(writer, "503 5.5.1 Say EHLO first").await?;
                    } else if envelope.from.is_some() {
                        reply(writer, "503 5.5.1 A transaction is already open").await?;
                    } else if from.size > self.settings.max_message_bytes {
                        reply(writer, "552 5.3.4 Message too big").await?;
                    } else {
                        envelope.from = Some(from.address.to_string());
                        reply(writer, "250 2.1.0 Sender OK").await?;
                    }
                }
                Request::Rcpt { to } => {
                    let answer = self.recipient(&mut envelope, &to.address).await;
                    reply(writer, answer).await?;
                }
                Request::Data => {
                    if envelope.from.is_none() {
                        reply(writer, "503 5.5.1 MAIL first").await?;
                    } else if envelope.recipients.is_empty() {
                        reply(writer, "554 5.5.1 No valid recipients").await?;
                    } else {
                        reply(writer, "354 End data with <CR><LF>.<CR><LF>").await?;
                        let answer = self
                            .data(reader, &envelope, helo.as_deref().unwrap_or(""), peer)
                            .await?;
                        envelope = Envelope::default();
                        reply(writer, &answer).await?;
                    }
                }
                Request::Rset => {
                    envelope = Envelope::default();
                    reply(writer, "250 2.0.0 OK").await?;
                }
                Request::Noop { .. } => reply(writer, "250 2.0.0 OK").await?,
                Request::Vrfy { .. } => {
                    reply(writer, "252 2.5.0 Cannot verify; send the mail").await?;
                }
                Request::Quit => return Ok(End::Quit),
                _ => reply(writer, "502 5.5.1 Command not implemented").await?,
            }
        }
    }

    /// Checks one RCPT: a local domain (else relaying, refused), an existing account.
    async fn recipient(&self, envelope: &mut Envelope, raw: &str) -> &'static str {
        if envelope.from.is_none() {
            return "503 5.5.1 MAIL first";
        }
        if envelope.recipients.len() >= self.settings.max_recipients {
            return "452 4.5.3 Too many recipients";
        }
        // Quoted local parts, percent hacks and source routes are not addresses of ours.
        let Ok(address) = Address::parse(raw) else {
            return "550 5.1.1 No such user here";
        };
        match self.store.domain(&address.domain()).await {
            Ok(Some(_)) => {}
            Ok(None) => return "550 5.7.1 Relaying denied",
            Err(_) => return "451 4.3.0 Temporary failure; try again later",
        }
        match self.store.account(&address).await {
            Ok(Some(account)) if account.enabled => {
                if !envelope
                    .recipients
                    .iter()
                    .any(|(known, _)| *known == address)
                {
                    envelope.recipients.push((address, account.quota_bytes));
                }
                "250 2.1.5 Recipient OK"
            }
            Ok(_) => "550 5.1.1 No such user here",
            Err(_) => "451 4.3.0 Temporary failure; try again later",
        }
    }

    /// Reads the message to CRLF.CRLF and stores it, or says why not (nothing stored).
    async fn data<R: AsyncBufRead + Unpin>(
        &self,
        reader: &mut R,
        envelope: &Envelope,
        helo: &str,
        peer: SocketAddr,
    ) -> std::io::Result<String> {
        let mut message = Vec::new();
        let (mut too_big, mut too_long, mut bare) = (false, false, false);
        // CRLF.CRLF ends the message only after a line that itself ended in CRLF.
        let mut after_crlf = true;
        loop {
            let line = match tokio::time::timeout(
                self.settings.idle_timeout,
                read_line(reader, MAX_TEXT_LINE),
            )
            .await
            {
                Ok(line) => line?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "idle during DATA",
                    ));
                }
            };
            let text = match line {
                Line::Closed => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed during DATA",
                    ));
                }
                Line::TooLong => {
                    too_long = true;
                    after_crlf = true;
                    continue;
                }
                Line::BareLineEnding(text) => {
                    bare = true;
                    // A bare CR inside a line that ends in CRLF: the next line may end DATA.
                    after_crlf = !text.ends_with(b"\n");
                    continue;
                }
                Line::Complete(text) => text,
            };
            if after_crlf && text == b"." {
                break;
            }
            after_crlf = true;
            let text = text.strip_prefix(b".").unwrap_or(&text);
            if message.len() + text.len() + 2 > self.settings.max_message_bytes {
                too_big = true;
            }
            if !too_big {
                message.extend_from_slice(text);
                message.extend_from_slice(b"\r\n");
            }
        }
        if bare {
            warn!(%peer, "message refused: bare CR or LF");
            return Ok("550 5.6.0 Bare CR or LF in the message: lines must end with CRLF".into());
        }
        if too_long {
            return Ok("550 5.5.2 Line too long (over 1000 octets)".into());
        }
        if too_big {
            return Ok("552 5.3.4 Message too big".into());
        }
        Ok(self.store_message(envelope, message, helo, peer).await)
    }

    async fn store_message(
        &self,
        envelope: &Envelope,
        message: Vec<u8>,
        helo: &str,
        peer: SocketAddr,
    ) -> String {
        let at = Utc::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let inbox = FolderName::parse("INBOX").expect("INBOX is a folder name");
        let (mut stored, mut full) = (0, 0);
        for (recipient, quota) in &envelope.recipients {
            let received = format!(
                "Received: from {} ({})\r\n\tby {} (pushmail) with ESMTP id {id}\r\n\tfor <{recipient}>; {}\r\n",
                sanitize(helo),
                peer.ip(),
                self.settings.hostname,
                at.to_rfc2822()
            );
            let mut raw = received.into_bytes();
            raw.extend_from_slice(&message);
            let new = NewMessage {
                raw,
                flags: Vec::new(),
                internal_date: at,
            };
            match self.store.deliver(recipient, &inbox, &new, *quota).await {
                Ok(Delivery::Stored { uid, .. }) => {
                    stored += 1;
                    info!(%recipient, uid, id, "delivered");
                }
                Ok(Delivery::OverQuota) => {
                    full += 1;
                    warn!(%recipient, id, "not delivered: over quota");
                }
                Ok(refused) => warn!(%recipient, ?refused, id, "not delivered"),
                Err(error) => warn!(%recipient, %error, id, "not delivered"),
            }
        }
        match stored {
            n if n == envelope.recipients.len() => format!("250 2.0.0 OK: queued as {id}"),
            0 if full == envelope.recipients.len() => "552 5.2.2 Mailbox full".into(),
            0 => "451 4.3.0 Not stored; try again later".into(),
            // Some recipients have it: telling the sender to retry would duplicate it for them.
            _ => format!("250 2.0.0 OK: queued as {id} (not for every recipient)"),
        }
    }
}

/// A HELO name as it may appear in a header: printable, no spaces, cut.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
}

async fn reply<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> std::io::Result<()> {
    writer.write_all(text.as_bytes()).await?;
    writer.write_all(b"\r\n").await?;
    writer.flush().await
}
