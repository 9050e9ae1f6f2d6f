//! SMTP for the tests: a client that speaks line by line (plain or after STARTTLS), a
//! certificate the client trusts, and a sink that plays the smarthost and keeps what it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmail_smtp::{Outgoing, RelayPolicy, Smarthost};
use pushmail_store::Store;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An SMTP client that asserts nothing by itself: each reply is returned whole.
pub struct Client {
    io: BufReader<Box<dyn Stream>>,
}

impl Client {
    pub async fn connect(address: SocketAddr) -> (Self, String) {
        let stream = TcpStream::connect(address).await.expect("connect");
        let mut client = Self {
            io: BufReader::new(Box::new(stream)),
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// One reply, its lines joined; multi-line replies read to their last line.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let read = self.io.read_line(&mut line).await.expect("read");
            assert!(read > 0, "the server closed the connection; so far: {all}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub async fn send(&mut self, raw: &[u8]) {
        self.io.get_mut().write_all(raw).await.expect("write");
    }

    pub async fn command(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Bytes the client has read but not yet used (nothing, between replies).
    pub fn buffered(&self) -> usize {
        self.io.buffer().len()
    }

    /// TLS over the same connection (after a 220 to STARTTLS).
    pub async fn start_tls(self, connector: &TlsConnector) -> Self {
        assert_eq!(self.buffered(), 0, "the server sent more than its 220");
        let stream = self.io.into_inner();
        let name = ServerName::try_from("localhost").expect("name");
        let tls = connector
            .connect(name, stream)
            .await
            .expect("TLS handshake");
        Self {
            io: BufReader::new(Box::new(tls)),
        }
    }

    /// MAIL, RCPT and DATA (each must be accepted), then `data` (ending in CRLF.CRLF); the
    /// answer to the message.
    pub async fn transaction(&mut self, from: &str, to: &str, data: &[u8]) -> String {
        self.start_data(from, &[to]).await;
        self.send(data).await;
        self.reply().await
    }

    /// MAIL, a RCPT for each recipient and DATA, each of which must be accepted: ready for
    /// the message.
    pub async fn start_data(&mut self, from: &str, recipients: &[&str]) {
        let mail = self.command(&format!("MAIL FROM:<{from}>")).await;
        assert!(mail.starts_with("250"), "MAIL: {mail}");
        for to in recipients {
            let rcpt = self.command(&format!("RCPT TO:<{to}>")).await;
            assert!(rcpt.starts_with("250"), "RCPT {to}: {rcpt}");
        }
        let data_reply = self.command("DATA").await;
        assert!(data_reply.starts_with("354"), "DATA: {data_reply}");
    }
}

/// A self-signed certificate for "localhost": the server's acceptor and a client that trusts
/// exactly it.
pub fn test_tls() -> (TlsAcceptor, TlsConnector) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
    let provider = Arc::new(ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    )
}

/// What the sink received in one transaction.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

/// A smarthost stand-in: answers RCPT with `rcpt_reply` (a 250 by default), keeps each
/// message it accepts.
#[derive(Clone)]
pub struct Sink {
    pub address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    rcpt_reply: Arc<Mutex<String>>,
}

impl Sink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sink = Self {
            address: listener.local_addr().expect("address"),
            received: Arc::default(),
            rcpt_reply: Arc::new(Mutex::new("250 2.1.5 OK".into())),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().session(stream));
            }
        });
        sink
    }

    /// How RCPT is answered from now on.
    pub fn answer_rcpt_with(&self, reply: &str) {
        *self.rcpt_reply.lock().unwrap() = reply.to_owned();
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The relay queue of `store` with this sink as its smarthost.
    pub fn relay(&self, store: Arc<dyn Store>, policy: RelayPolicy) -> Arc<Outgoing> {
        let transport = Smarthost {
            address: self.address.to_string(),
            hostname: "pushmail.test".into(),
            timeout: Duration::from_secs(5),
        };
        Arc::new(Outgoing::new(
            store,
            Arc::new(transport),
            policy,
            "pushmail.test".into(),
        ))
    }

    async fn session(self, stream: TcpStream) {
        let mut io = BufReader::new(stream);
        let _ = io.get_mut().write_all(b"220 sink ESMTP\r\n").await;
        let mut current = Received {
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250 sink".to_owned()
            } else if let Some(from) = line.get(10..).filter(|_| upper.starts_with("MAIL FROM:")) {
                current.from = from.trim().trim_matches(['<', '>']).to_owned();
                "250 2.1.0 OK".to_owned()
            } else if let Some(to) = line.get(8..).filter(|_| upper.starts_with("RCPT TO:")) {
                let reply = self.rcpt_reply.lock().unwrap().clone();
                if reply.starts_with('2') {
                    current
                        .to
                        .push(to.trim().trim_matches(['<', '>']).to_owned());
                }
                reply
            } else if upper.starts_with("DATA") {
                let _ = io.get_mut().write_all(b"354 go on\r\n").await;
                let mut data = Vec::new();
                loop {
                    let mut text = Vec::new();
                    if io.read_until(b'\n', &mut text).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if text == b".\r\n" {
                        break;
                    }
                    let text = text.strip_prefix(b".").unwrap_or(&text);
                    data.extend_from_slice(text);
                }
                current.data = data;
                self.received.lock().unwrap().push(current.clone());
                "250 2.0.0 taken".to_owned()
            } else if upper.starts_with("QUIT") {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                return;
            } else {
                "250 OK".to_owned()
            };
            let _ = io
                .get_mut()
                .write_all(format!("{reply}\r\n").as_bytes())
                .await;
        }
    }
}
