//! COMPRESS=DEFLATE (RFC 4978) over real TCP, with flate2 on the client's side: commands and
//! answers compressed both ways, across the server letting its compressor go between commands;
//! the refusals (before login, twice, over the process's cap, which a closed session frees); and
//! a line that inflates far past the command bound, answered BAD with the session going on.

use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use pushmail_imap::ImapSettings;
use pushmail_tests::Harness;
use pushmail_tests::imap::{Peer, deliver, last, listener, logged_in, loopback_plaintext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A session after COMPRESS: raw DEFLATE both ways.
struct Deflating {
    stream: TcpStream,
    deflate: Compress,
    inflate: Decompress,
    inflated: Vec<u8>,
}

impl Deflating {
    async fn from(peer: Peer) -> Self {
        let stream = peer.reader.into_inner().reunite(peer.writer).unwrap();
        Self {
            stream,
            deflate: Compress::new(Compression::default(), false),
            inflate: Decompress::new(false),
            inflated: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
        let mut input = bytes;
        loop {
            out.reserve(64 * 1024);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(self.deflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        self.stream.write_all(&out).await.unwrap();
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(end) = self.inflated.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.inflated.drain(..=end).collect();
                return String::from_utf8_lossy(&line).into_owned();
            }
            let mut chunk = vec![0; 16 * 1024];
            let read = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("an answer within 10 s")
                .unwrap();
            assert!(read > 0, "closed");
            let mut input = &chunk[..read];
            while !input.is_empty() {
                let mut out = Vec::with_capacity(64 * 1024);
                let before = self.inflate.total_in();
                self.inflate
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                input = &input[(self.inflate.total_in() - before) as usize..];
                self.inflated.extend_from_slice(&out);
            }
        }
    }

    async fn command(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

#[tokio::test]
async fn a_compressed_session_works_both_ways_and_is_bounded() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let body = "A line that repeats, as mail does. ".repeat(3000);
    deliver(
        &h,
        &alice,
        "INBOX",
        format!("Subject: big\r\n\r\n{body}\r\n"),
        vec![],
    )
    .await;
    let settings = ImapSettings {
        max_compressed_sessions: 1,
        ..loopback_plaintext()
    };
    let (address, _) = listener(&h, settings).await;

    let (mut early, _) = Peer::connect(address).await;
    let refused = early.command("c0", "COMPRESS DEFLATE").await;
    assert!(last(&refused).starts_with("c0 BAD"), "{refused:?}");

    let mut peer = logged_in(address, alice.as_str()).await;
    let capabilities = peer.command("c", "CAPABILITY").await.join("");
    assert!(capabilities.contains("COMPRESS=DEFLATE"), "{capabilities}");
    let on = peer.command("z", "COMPRESS DEFLATE").await;
    assert_eq!(last(&on).trim_end(), "z OK DEFLATE active");
    let mut deflating = Deflating::from(peer).await;
    // Several commands: the server's compressor goes between them and a fresh one continues.
    for round in 0..3 {
        let lines = deflating
            .command(&format!("s{round}"), "SELECT INBOX")
            .await;
        assert!(lines.iter().any(|l| l == "* 1 EXISTS\r\n"), "{lines:?}");
        let lines = deflating
            .command(&format!("f{round}"), "FETCH 1 (BODY.PEEK[TEXT])")
            .await;
        assert!(last(&lines).contains("OK FETCH done"), "{lines:?}");
        let text: String = lines.concat();
        assert_eq!(text.matches("A line that repeats").count(), 3000);
    }
    let again = deflating.command("z2", "COMPRESS DEFLATE").await;
    assert!(
        last(&again).starts_with("z2 NO [COMPRESSIONACTIVE]"),
        "{again:?}"
    );

    // The process's cap: a second session is told to go on uncompressed.
    let mut second = logged_in(address, alice.as_str()).await;
    let capped = second.command("z3", "COMPRESS DEFLATE").await;
    assert!(last(&capped).starts_with("z3 NO [LIMIT]"), "{capped:?}");
    let fine = second.command("n", "NOOP").await;
    assert!(last(&fine).starts_with("n OK"), "{fine:?}");

    // 8 MB of one line, a few KB on the wire: thrown away as it inflates, answered BAD.
    let mut bomb = b"b1 SEARCH SUBJECT ".to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 8 * 1024 * 1024));
    bomb.extend_from_slice(b"\r\n");
    deflating.send(&bomb).await;
    let answer = deflating.line().await;
    assert!(
        answer.contains("BAD") && answer.contains("too big"),
        "{answer}"
    );
    let lines = deflating.command("n2", "NOOP").await;
    assert!(last(&lines).starts_with("n2 OK"), "{lines:?}");

    // Closing the compressed session frees its place.
    let lines = deflating.command("bye", "LOGOUT").await;
    assert!(last(&lines).starts_with("bye OK"), "{lines:?}");
    drop(deflating);
    let mut third = logged_in(address, alice.as_str()).await;
    for attempt in 0.. {
        let lines = third.command("z4", "COMPRESS DEFLATE").await;
        if last(&lines).starts_with("z4 OK") {
            break;
        }
        assert!(attempt < 50, "the place was not freed: {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
