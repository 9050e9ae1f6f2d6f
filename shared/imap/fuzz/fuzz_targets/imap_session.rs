//! The IMAP command path, end to end: arbitrary bytes from a peer into a session (loopback
//! plaintext LOGIN allowed, so the authenticated and selected states are reachable) on a real
//! embedded store with one account, its password hashed once. Whatever the bytes, the session
//! must neither panic nor hang.

#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::types::{Account, Address, Domain, DomainName};
use pushmail_imap::{Imap, ImapSettings};
use pushmail_store::{EmbeddedStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    runtime: tokio::runtime::Runtime,
    imap: Imap,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        // Every input comes from one loopback source: its wrong passwords would soon slow each
        // check by seconds (the per-source delay) and the fuzzer would test nothing else.
        pushmail_store::credentials::CredentialLimits::configure(
            pushmail_store::credentials::CredentialLimits {
                source_max_delay_secs: 0,
                ..Default::default()
            },
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("fuzz.redb")).unwrap());
        runtime.block_on(async {
            let now = chrono::Utc::now();
            store
                .put_domain(&Domain::new(DomainName::parse("example.com").unwrap(), now))
                .await
                .unwrap();
            let alice = Address::parse("alice@example.com").unwrap();
            store
                .put_account(&Account {
                    address: alice.clone(),
                    // "pw", hashed once with cheap parameters is not available here: the real
                    // hash costs ~50 ms, so LOGIN is reachable but slow; most inputs never log in.
                    password_hash: pushmail_core::password::hash_password("pw").unwrap(),
                    enabled: true,
                    display_name: None,
                    pushed_folders: Vec::new(),
                    created_at: now,
                    revision: 0,
                    quota_bytes: None,
                    sender_aliases: Vec::new(),
                    filing_rules: Vec::new(),
                })
                .await
                .unwrap();
            store.create_default_folders(&alice, now).await.unwrap();
            // Three ordinary messages, then odd ones no parser expects (FETCH of every item
            // over them was once a panic that ended the process).
            let mut messages: Vec<Vec<u8>> = (0..3)
                .map(|i| {
                    format!("From: b@example.org\r\nSubject: m{i}\r\n\r\nbody\r\n").into_bytes()
                })
                .collect();
            for odd in [
                &b"   "[..],
                b"\r\n",
                b"Subject: header only",
                b"\0\0",
                b"Subject: \xff\xfe\r\n\r\n\xe9\r\n",
                b"Content-Type: message/rfc822\r\n\r\n",
                b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
                b"To: group: ;\r\n\r\n",
            ] {
                messages.push(odd.to_vec());
            }
            for raw in messages {
                let message = NewMessage {
                    raw,
                    flags: Vec::new(),
                    internal_date: now,
                    owner_known_at: None,
                };
                let inbox = FolderName::inbox();
                store.deliver(&alice, &inbox, &message, None).await.unwrap();
            }
        });
        let settings = ImapSettings {
            plaintext_login_on_loopback: true,
            idle_poll: Duration::from_millis(5),
            ..ImapSettings::default()
        };
        World {
            runtime,
            imap: Imap::new(store, settings, pushmail_core::hints::ChangeHints::new()),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    pushmail_imap::fuzzing::let_the_parsers_own_checks_through();
    let world = world();
    let peer: SocketAddr = "127.0.0.1:1143".parse().unwrap();
    world.runtime.block_on(async {
        let (server, client) = tokio::io::duplex(16 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let session = world.imap.converse(server, peer);
        let writing = async {
            let _ = to_server.write_all(data).await;
            let _ = to_server.shutdown().await;
        };
        let reading = async {
            let mut sink = Vec::new();
            let _ = from_server.read_to_end(&mut sink).await;
        };
        tokio::join!(session, writing, reading);
    });
});
