//! The IMAP benchmark's peer: the `pushmail` process started with `--demo` on free ports (and
//! a certificate made here, so the TLS clients can trust it), SMTP to fill mailboxes, and a
//! minimal IMAP client over plain TCP or TLS.

#![allow(dead_code)]

use std::io::{BufRead, BufReader as StdBufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::common::reply;

pub const USER: &str = "alice@example.com";
pub const PASSWORD: &str = "alice-password";

struct Process {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub struct Server {
    process: Arc<Process>,
    pub smtp: String,
    pub imap: String,
    pub imaps: String,
    tls: Arc<ClientConfig>,
}

fn millis_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn millis(d: Duration) -> f64 {
    millis_of(d)
}

/// A message of about `size` octets, CRLF lines.
pub fn message(size: usize, n: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: bench@sender.example\r\nTo: alice@example.com\r\nSubject: bench {n}\r\n\
         Message-ID: <{n}.{}@sender.example>\r\n\r\n",
        std::process::id()
    )
    .into_bytes();
    while raw.len() + 78 < size {
        raw.extend_from_slice(&[b'x'; 76]);
        raw.extend_from_slice(b"\r\n");
    }
    raw
}

impl Server {
    /// `pushmail --demo` in a fresh data directory, with bounds high enough for the benchmark.
    pub async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pushmail-bench-")
            .tempdir()
            .unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pushmail"))
            .args([
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
                "--demo",
            ])
            .args([
                "--subscribe-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .args([
                "--smtp-addr",
                "127.0.0.1:0",
                "--submission-addr",
                "127.0.0.1:0",
            ])
            .args(["--imap-addr", "127.0.0.1:0", "--imaps-addr", "127.0.0.1:0"])
            .args([
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ])
            .args(["--imap-max-connections", "100000"])
            .args(["--imap-max-connections-per-source", "100000"])
            .args(["--imap-max-sessions-per-account", "100000"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            // BENCH_SERVER_LOG=<file> keeps the server's log.
            .stderr(match std::env::var_os("BENCH_SERVER_LOG") {
                Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
                None => Stdio::null(),
            })
            .spawn()
            .expect("pushmail starts");
        let stdout = child.stdout.take().unwrap();
        let (mut smtp, mut imap, mut imaps) = (String::new(), String::new(), String::new());
        for line in StdBufReader::new(stdout).lines() {
            let line = line.unwrap();
            let value = |prefix: &str| line.strip_prefix(prefix).map(|v| v.trim().to_owned());
            if let Some(v) = value("SMTP:") {
                smtp = v;
            } else if let Some(v) = value("IMAPS:") {
                imaps = v;
            } else if let Some(v) = value("IMAP:") {
                imap = v;
            } else if line.starts_with("Store:") {
                break;
            }
        }
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(certified.cert.der().to_vec()))
            .unwrap();
        let tls = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self {
            process: Arc::new(Process { child, _dir: dir }),
            smtp,
            imap,
            imaps,
            tls: Arc::new(tls),
        }
    }

    /// The server process's resident memory.
    pub fn rss_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    }

    pub async fn smtp_session(&self) -> SmtpSession {
        let stream = tokio::net::TcpStream::connect(&self.smtp).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (reader, writer) = stream.into_split();
        let mut session = SmtpSession {
            reader: BufReader::new(reader),
            writer,
        };
        assert!(reply(&mut session.reader).await.starts_with("220"));
        session.writer.write_all(b"EHLO bench\r\n").await.unwrap();
        assert!(reply(&mut session.reader).await.starts_with("250"));
        session
    }

    /// `count` messages of about `size` octets into alice's INBOX.
    pub async fn deliver_many(&self, count: usize, size: usize) {
        let mut smtp = self.smtp_session().await;
        for n in 0..count {
            smtp.send(&message(size, n)).await;
        }
    }

    pub async fn session(&self, tls: bool) -> ImapSession {
        let stream = tokio::net::TcpStream::connect(if tls { &self.imaps } else { &self.imap })
            .await
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let io: Box<dyn Io> = if tls {
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let name = ServerName::try_from("localhost").unwrap();
            Box::new(connector.connect(name, stream).await.unwrap())
        } else {
            Box::new(stream)
        };
        let (reader, writer) = tokio::io::split(io);
        let mut session = ImapSession {
            reader: BufReader::new(reader),
            writer,
            tag: 0,
        };
        let greeting = session.line().await;
        assert!(greeting.starts_with("* OK"), "{greeting}");
        session
    }

    /// Time from each SMTP 250 to the `* n EXISTS` an idler on INBOX is sent.
    pub async fn exists_latencies(&self, smtp_to: &Server, count: usize) -> Vec<Duration> {
        let mut idler = self.session(false).await;
        idler.login().await;
        idler.command("SELECT INBOX").await;
        idler.idle().await;
        let mut smtp = smtp_to.smtp_session().await;
        let mut latencies = Vec::with_capacity(count);
        for n in 0..count {
            smtp.send(&message(2048, n)).await;
            let acknowledged = Instant::now();
            loop {
                let line = idler.line().await;
                if line.ends_with(" EXISTS\r\n") {
                    break;
                }
            }
            latencies.push(acknowledged.elapsed());
        }
        latencies.sort();
        latencies
    }
}

pub struct SmtpSession {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl SmtpSession {
    /// One message to alice (MAIL, RCPT and DATA pipelined), returning at the 250.
    pub async fn send(&mut self, body: &[u8]) {
        self.writer
            .write_all(
                b"MAIL FROM:<bench@sender.example>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n",
            )
            .await
            .unwrap();
        for code in ["250", "250", "354"] {
            let answer = reply(&mut self.reader).await;
            assert!(answer.starts_with(code), "{answer}");
        }
        self.writer.write_all(body).await.unwrap();
        self.writer.write_all(b".\r\n").await.unwrap();
        let answer = reply(&mut self.reader).await;
        assert!(answer.starts_with("250"), "{answer}");
    }
}

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub struct ImapSession {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
    writer: tokio::io::WriteHalf<Box<dyn Io>>,
    tag: usize,
}

impl ImapSession {
    pub async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).await.unwrap();
        assert!(read > 0, "the server closed the connection");
        line
    }

    /// Sends a command; everything up to its tagged answer.
    pub async fn command(&mut self, command: &str) -> String {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await
            .unwrap();
        self.until_tagged(&tag).await
    }

    async fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let line = self.line().await;
            all.push_str(&line);
            if line.starts_with(tag) && line.as_bytes().get(tag.len()) == Some(&b' ') {
                return all;
            }
        }
    }

    /// LOGIN, again after a moment while the server says it is busy checking passwords.
    pub async fn login(&mut self) {
        for _ in 0..100 {
            let answer = self.command(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
            if answer.contains(" OK ") {
                return;
            }
            assert!(answer.contains("[UNAVAILABLE]"), "{answer}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server stayed busy");
    }

    pub async fn idle(&mut self) {
        self.tag += 1;
        self.writer
            .write_all(format!("b{} IDLE\r\n", self.tag).as_bytes())
            .await
            .unwrap();
        let go = self.line().await;
        assert!(go.starts_with('+'), "{go}");
    }

    /// APPEND with a non-synchronising literal (LITERAL+).
    pub async fn append(&mut self, folder: &str, message: &[u8]) {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let head = format!("{tag} APPEND {folder} {{{}+}}\r\n", message.len());
        self.writer.write_all(head.as_bytes()).await.unwrap();
        self.writer.write_all(message).await.unwrap();
        self.writer.write_all(b"\r\n").await.unwrap();
        let answer = self.until_tagged(&tag).await;
        assert!(answer.contains(" OK [APPENDUID"), "{answer}");
    }
}
