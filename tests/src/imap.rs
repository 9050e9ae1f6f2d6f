//! An IMAP peer for the tests: a line reader over raw TCP, and a listener on a free port.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pushmail_core::hints::ChangeHints;
use pushmail_imap::{Imap, ImapSettings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::Harness;

pub struct Peer {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl Peer {
    pub async fn connect(address: SocketAddr) -> (Self, String) {
        let (reader, writer) = TcpStream::connect(address).await.unwrap().into_split();
        let mut peer = Self {
            reader: BufReader::new(reader),
            writer,
        };
        let greeting = peer.line().await;
        (peer, greeting)
    }

    pub async fn line(&mut self) -> String {
        // Bytes, not text: a literal may carry any octet (8-bit mail).
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            self.reader.read_until(b'\n', &mut line),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        assert!(read > 0, "closed");
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Sends `tag command` and reads up to the tagged answer; all lines, the tagged one last.
    pub async fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.command_until(tag, command, false).await
    }

    /// As [`Peer::command`], but a `* BYE` (the server ending the session) also ends the
    /// answer.
    pub async fn command_or_bye(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.command_until(tag, command, true).await
    }

    async fn command_until(&mut self, tag: &str, command: &str, or_bye: bool) -> Vec<String> {
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done =
                line.starts_with(&format!("{tag} ")) || (or_bye && line.starts_with("* BYE"));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

/// Sends `tag command`, asserts it ended in `tag OK`, and gives every line of the answer.
pub async fn ok(peer: &mut Peer, tag: &str, command: &str) -> Vec<String> {
    let lines = peer.command(tag, command).await;
    assert!(
        last(&lines).starts_with(&format!("{tag} OK")),
        "{command}: {lines:?}"
    );
    lines
}

pub fn last(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or_default()
}

pub async fn listener(h: &Harness, settings: ImapSettings) -> (SocketAddr, ChangeHints) {
    let hints = ChangeHints::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let imap = Imap::new(h.store.clone(), settings, hints.clone());
    tokio::spawn(pushmail_listener::serve(
        listener,
        std::sync::Arc::new(imap),
        pushmail_listener::Limits::default(),
        std::future::pending(),
    ));
    (address, hints)
}

pub fn loopback_plaintext() -> ImapSettings {
    ImapSettings {
        plaintext_login_on_loopback: true,
        idle_poll: Duration::from_millis(200),
        ..ImapSettings::default()
    }
}

/// Stores a message in one of `account`'s folders, as a delivery does (a notice if the account
/// is integrated and the folder pushed), with these flags.
pub async fn deliver(
    h: &Harness,
    account: &pushmail_core::types::Address,
    folder: &str,
    raw: impl Into<Vec<u8>>,
    flags: Vec<String>,
) {
    let folder = pushmail_core::folder::FolderName::parse(folder).expect("a folder name");
    let message = pushmail_core::mailbox::NewMessage {
        flags,
        ..crate::fixtures::new_message(raw)
    };
    let delivered = h.store.deliver(account, &folder, &message, None).await;
    assert!(
        matches!(delivered, Ok(pushmail_store::Delivery::Stored { .. })),
        "{delivered:?}"
    );
}

/// A session logged in as `account` (plaintext LOGIN from loopback).
pub async fn logged_in(address: SocketAddr, account: &str) -> Peer {
    let (mut peer, _) = Peer::connect(address).await;
    let login = peer
        .command("l0", &format!("LOGIN {account} \"{}\"", crate::PASSWORD))
        .await;
    assert!(last(&login).starts_with("l0 OK"), "{login:?}");
    peer
}

/// Reads lines until one contains `what`, within 5 s; how long it took.
pub async fn until(peer: &mut Peer, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let line = peer.line().await;
        if line.contains(what) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no {what}");
    }
}
