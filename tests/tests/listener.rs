//! The local HTTP listeners' bounds, tried with raw TCP as a slow or greedy peer would: slow
//! headers, idle keep-alives, stalled bodies, huge announced bodies, too many connections.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use pushmail_http::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Serves `app` with `limits` on a free loopback port; returns the address.
async fn listen(app: Router, limits: Limits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(pushmail_http::serve_until(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    address
}

fn echo() -> Router {
    Router::new().route(
        "/echo",
        post(|body: axum::body::Bytes| async move { format!("{}", body.len()) }),
    )
}

fn tight() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        max_connections: 4,
        max_connections_per_source: 3,
    }
}

/// Reads until the peer closes (or `within` passes): what was received, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&received).into(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test]
async fn a_slow_header_is_cut_off() {
    let address = listen(echo(), tight()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        closed,
        "the server held a connection whose header never ended"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let address = listen(echo(), tight()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(closed, "an idle keep-alive was held");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    let address = listen(echo(), tight()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    let (received, _) = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("request_timeout"), "{received}");
}

#[tokio::test]
async fn a_huge_announced_body_is_refused_before_it_is_sent() {
    let h = pushmail_tests::Harness::start().await;
    let address = h.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000000000000\r\n\r\n{",
        )
        .await
        .unwrap();
    let (received, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(received.starts_with("HTTP/1.1 413"), "{received}");
    assert!(received.contains("too_large"), "{received}");
}

#[tokio::test]
async fn one_source_cannot_hold_more_than_its_share_of_connections() {
    let address = listen(echo(), tight()).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    // Each held connection is accepted before the next is counted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(address).await.unwrap();
    let (_, closed) = read_until_closed(&mut fourth, Duration::from_millis(900)).await;
    assert!(closed, "a fourth connection from one source was kept");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(address).await.unwrap();
    again
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let (received, _) = read_until_closed(&mut again, Duration::from_secs(5)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}

#[tokio::test]
async fn past_the_connection_cap_a_client_waits_for_a_free_place() {
    let limits = Limits {
        max_connections: 2,
        max_connections_per_source: 64,
        ..tight()
    };
    let address = listen(echo(), limits).await;
    let mut held = vec![
        TcpStream::connect(address).await.unwrap(),
        TcpStream::connect(address).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(address).await.unwrap();
    third
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buffer)).await;
    assert!(early.is_err(), "served past the cap");
    // The held ones send no header: the header timeout frees their places, and the third is
    // served.
    held.clear();
    let (received, _) = read_until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}
