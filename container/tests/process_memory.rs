//! The process's memory under messages arriving at once: 48 unauthenticated SMTP sessions each
//! send 25 MiB and hold before the final dot; the process's resident memory, read from /proc
//! while all are held, grows by no more than the DATA budget (192 MiB by default: messages past
//! it are answered 452 4.3.1, read to their end but not kept) and what the sessions themselves
//! hold.

mod support;

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SESSIONS: usize = 48;
const MESSAGE_MIB: usize = 25;
/// The process's default DATA budget.
const BUDGET_MIB: u64 = 192;
/// What 48 sessions hold beside their messages (buffers, tasks), and the allocator's slack.
const SESSIONS_MIB: u64 = 32;

/// The process's resident set, in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

async fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(60), reader.read_line(&mut line))
        .await
        .expect("a reply")
        .unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_arriving_at_once_hold_no_more_than_the_data_budget() {
    let dir = support::data_dir();
    let process = support::start(dir.path()).await;
    let smtp = process.smtp.clone();
    let pid = process.child.id();
    let before = resident(pid);
    // One MiB of 1,000-octet lines, sent 25 times by each session.
    let mut chunk = Vec::with_capacity(1 << 20);
    while chunk.len() + 1000 <= 1 << 20 {
        chunk.extend_from_slice(&[b'x'; 998]);
        chunk.extend_from_slice(b"\r\n");
    }
    let chunk = std::sync::Arc::new(chunk);
    let held = std::sync::Arc::new(tokio::sync::Barrier::new(SESSIONS + 1));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut sessions = tokio::task::JoinSet::new();
    for n in 0..SESSIONS {
        let (smtp, chunk, held, release) =
            (smtp.clone(), chunk.clone(), held.clone(), release.clone());
        sessions.spawn(async move {
            let mut reader = BufReader::new(TcpStream::connect(&smtp).await.unwrap());
            line(&mut reader).await;
            for command in [
                "EHLO big.example".to_owned(),
                format!("MAIL FROM:<big{n}@big.example>"),
                "RCPT TO:<alice@example.com>".to_owned(),
                "DATA".to_owned(),
            ] {
                reader
                    .get_mut()
                    .write_all(format!("{command}\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut reply = line(&mut reader).await;
                while reply.as_bytes().get(3) == Some(&b'-') {
                    reply = line(&mut reader).await;
                }
                assert!(
                    reply.starts_with('2') || reply.starts_with('3'),
                    "{command}: {reply}"
                );
            }
            reader
                .get_mut()
                .write_all(b"Subject: big\r\n\r\n")
                .await
                .unwrap();
            for _ in 0..MESSAGE_MIB {
                reader.get_mut().write_all(&chunk).await.unwrap();
            }
            let notified = release.notified();
            held.wait().await;
            notified.await;
            reader.get_mut().write_all(b".\r\n").await.unwrap();
            line(&mut reader).await
        });
    }
    held.wait().await;
    // Every session has sent its 25 MiB (the kernel's buffers aside): the process holds what
    // it kept of them now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = resident(pid);
    release.notify_waiters();
    let answers = sessions.join_all().await;
    let kept = answers.iter().filter(|a| a.starts_with("250")).count();
    for answer in &answers {
        assert!(
            answer.starts_with("250") || answer.starts_with("452 4.3.1"),
            "{answer}"
        );
    }
    assert!(kept >= 1, "{answers:?}");
    let grown = during.saturating_sub(before);
    assert!(
        grown < (BUDGET_MIB + SESSIONS_MIB) << 20,
        "{} MiB more resident with {SESSIONS} messages of {MESSAGE_MIB} MiB held ({} MiB before)",
        grown >> 20,
        before >> 20
    );
    eprintln!("{} MiB grown, {} MiB before", grown >> 20, before >> 20);
}
