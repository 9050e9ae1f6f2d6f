//! The SMTP command path, end to end: arbitrary bytes from a peer into a session of either role
//! (the first byte picks it), on a real embedded store with one account. Whatever the bytes,
//! the session must neither panic nor hang; invariants of the store are checked by the suites.

#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use pushmail_core::types::{Account, Address, Domain, DomainName};
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_store::{EmbeddedStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct World {
    runtime: tokio::runtime::Runtime,
    inbound: Smtp,
    submission: Smtp,
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
            let domain = DomainName::parse("example.com").unwrap();
            store.put_domain(&Domain::new(domain, now)).await.unwrap();
            let alice = Address::parse("alice@example.com").unwrap();
            store
                .put_account(&Account {
                    address: alice.clone(),
                    // Not a hash: every AUTH fails fast (the hashing itself is not under test).
                    password_hash: "x".into(),
                    enabled: true,
                    display_name: None,
                    pushed_folders: Vec::new(),
                    created_at: now,
                    revision: 0,
                    quota_bytes: Some(1 << 20),
                    sender_aliases: Vec::new(),
                    filing_rules: Vec::new(),
                })
                .await
                .unwrap();
            store.create_default_folders(&alice, now).await.unwrap();
        });
        let settings = SmtpSettings {
            max_message_bytes: 64 * 1024,
            plaintext_auth_on_loopback: true,
            ..SmtpSettings::default()
        };
        World {
            runtime,
            inbound: Smtp::inbound(store.clone(), settings.clone()),
            submission: Smtp::submission(store, settings, None),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&role, input)) = data.split_first() else {
        return;
    };
    let world = world();
    let smtp = if role & 1 == 0 { &world.inbound } else { &world.submission };
    let peer: SocketAddr = "127.0.0.1:2525".parse().unwrap();
    world.runtime.block_on(async {
        let (server, client) = tokio::io::duplex(16 * 1024);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let session = smtp.converse(server, peer);
        // Reading and writing at once, as a peer does: neither side's buffer can fill up.
        let writing = async {
            let _ = to_server.write_all(input).await;
            let _ = to_server.shutdown().await;
        };
        let reading = async {
            let mut sink = Vec::new();
            let _ = from_server.read_to_end(&mut sink).await;
        };
        tokio::join!(session, writing, reading);
    });
});
