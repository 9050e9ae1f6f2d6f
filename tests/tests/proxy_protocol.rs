//! PROXY protocol v2 at a real IMAP listener: from a trusted balancer the header's client is
//! the one the per-source limit counts (two clients behind one balancer are two sources, one
//! client twice is one); a missing, forged, malformed or oversized header closes the connection
//! before a greeting; LOCAL (the balancer's health check) is served as the balancer; and a
//! listener that trusts no balancer reads no header, so no client can name itself another.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ppp::v2::{Addresses, Builder, Command, IPv4, Protocol, Version};
use pushmail_core::hints::ChangeHints;
use pushmail_imap::Imap;
use pushmail_listener::{Limits, TrustedProxies};
use pushmail_tests::Harness;
use pushmail_tests::imap::loopback_plaintext;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

async fn listener(h: &Harness, trusted: &str) -> SocketAddr {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let imap = Imap::new(h.store.clone(), loopback_plaintext(), ChangeHints::new());
    let limits = Limits {
        max_connections_per_source: 1,
        proxies: TrustedProxies::parse(trusted).unwrap(),
        ..Limits::default()
    };
    tokio::spawn(pushmail_listener::serve(
        socket,
        Arc::new(imap),
        limits,
        std::future::pending(),
    ));
    address
}

fn header(client: [u8; 4], port: u16) -> Vec<u8> {
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        IPv4::new(client, [10, 0, 0, 2], port, 143),
    )
    .build()
    .unwrap()
}

/// Connects, sends `first`, and returns the connection and its first line ("" if closed).
async fn open(address: SocketAddr, first: &[u8]) -> (BufReader<TcpStream>, String) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(first).await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .expect("an answer or a close within 10 s")
        .unwrap_or_default();
    (reader, line)
}

#[tokio::test]
async fn the_balancer_names_the_client_and_nobody_else_can() {
    let h = Harness::start().await;
    let behind = listener(&h, "127.0.0.0/8").await;

    let (_first, greeting) = open(behind, &header([203, 0, 113, 7], 4000)).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    // The same client again: its source is at the cap of one.
    let (_, refused) = open(behind, &header([203, 0, 113, 7], 4001)).await;
    assert!(refused.starts_with("* BYE"), "{refused}");
    // Another client behind the same balancer: a source of its own.
    let (_other, greeting) = open(behind, &header([198, 51, 100, 9], 4000)).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    // The balancer's own health check.
    let local = Builder::with_addresses(
        Version::Two | Command::Local,
        Protocol::Unspecified,
        Addresses::Unspecified,
    )
    .build()
    .unwrap();
    let (_check, greeting) = open(behind, &local).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");

    // No header, a malformed one, one claiming 64 KB: closed before a greeting.
    let mut malformed = header([192, 0, 2, 1], 1);
    malformed[12] = 0x31; // version 3
    let mut oversized = header([192, 0, 2, 2], 1);
    oversized[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    for first in [
        b"a1 NOOP\r\na2 NOOP\r\na3 LOGOUT\r\n".to_vec(),
        malformed,
        oversized,
    ] {
        let (_, line) = open(behind, &first).await;
        assert_eq!(line, "", "closed without a word");
    }

    // A listener that trusts no balancer reads no header: the bytes are IMAP (not a command),
    // and both connections are the one source they come from.
    let direct = listener(&h, "").await;
    let (mut forged, greeting) = open(direct, &header([203, 0, 113, 50], 1)).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let (_, refused) = open(direct, &header([203, 0, 113, 51], 1)).await;
    assert!(refused.starts_with("* BYE"), "{refused}");
    let mut answer = String::new();
    forged.read_line(&mut answer).await.unwrap();
    assert!(answer.contains("BAD"), "{answer}");
}
