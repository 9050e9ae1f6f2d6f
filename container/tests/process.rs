//! The `pushmail` process as a user runs it: started in a fresh data directory, driven over
//! HTTP, and killed with SIGKILL in the middle of a stream of SUBSCRIBEs. Mail, SIGTERM and
//! notices: `process_mail.rs`.

use pushmail_core::types::{Address, now};
use pushmail_store::prelude::*;
use pushmail_store::{EmbeddedStore, LinkQuery};
use serde_json::{Value, json};

mod support;
use support::*;

/// A SUBSCRIBE signed as a push service signs it, with a timestamp of its own.
async fn subscribe(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    generation: u64,
    timestamp: i64,
) -> Result<Value, String> {
    let request = json!({
        "type": "SUBSCRIBE", "email": email, "password": password,
        "registration": format!("r-{}", email.replace('@', ".")), "generation": generation,
        "callback": "https://push.example.net/n/1",
    });
    let response = post_signed(client, url, &request, timestamp)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_command_answers_a_signed_subscribe_and_an_admin_request() {
    let dir = data_dir();
    let process = start(dir.path()).await;
    let token = process.token.clone().expect("a first run prints a token");
    let client = reqwest::Client::new();
    let answer = subscribe(
        &client,
        &process.subscribe,
        "alice@example.com",
        "alice-password",
        1,
        now().timestamp(),
    )
    .await
    .unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["activation"].as_str()),
        (Some("subscribed"), Some("sent"))
    );

    let listed: Value = client
        .get(format!(
            "{}/domains/example.com/integrated-accounts",
            process.admin
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["address"], "alice@example.com");
    // With no SES configured, the activation mail is kept, not dropped.
    let mail: Value = client
        .get(format!("{}/accounts/alice@example.com/mail", process.admin))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        mail["items"][0]["subject"],
        "Email activation information (push mail)"
    );

    // A second start on the same directory keeps everything and prints no new token, and
    // the demo's DKIM key is the same one (its published record stays true).
    let dkim = process.dkim.clone();
    assert!(
        dkim.as_deref().is_some_and(|d| d.contains("k=ed25519")),
        "{dkim:?}"
    );
    drop(process);
    let again = start(dir.path()).await;
    assert_eq!(again.token, None);
    assert_eq!(again.dkim, dkim);
    let status = client
        .get(format!(
            "{}/accounts/alice@example.com/integration",
            again.admin
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_stream_of_subscribes_loses_no_acknowledged_link() {
    let dir = data_dir();
    let mut process = start(dir.path()).await;
    let token = process.token.clone().unwrap();
    let client = reqwest::Client::new();
    let accounts: Vec<String> = (0..120)
        .map(|i| format!("user{i:03}@example.com"))
        .collect();
    for address in &accounts {
        let created = client
            .post(format!("{}/domains/example.com/accounts", process.admin))
            .bearer_auth(&token)
            .json(&json!({"address": address, "password": "crash-test-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
    }

    // Eight clients stream SUBSCRIBEs; the process is killed while they are in flight.
    let (sender, mut acknowledged) = tokio::sync::mpsc::unbounded_channel::<String>();
    let start_ts = now().timestamp();
    let streams: Vec<_> = accounts
        .chunks(15)
        .map(|chunk| {
            let (client, url, sender, chunk) = (
                client.clone(),
                process.subscribe.clone(),
                sender.clone(),
                chunk.to_vec(),
            );
            tokio::spawn(async move {
                for (i, address) in chunk.iter().enumerate() {
                    match subscribe(
                        &client,
                        &url,
                        address,
                        "crash-test-password",
                        1,
                        start_ts - i as i64,
                    )
                    .await
                    {
                        Ok(_) => sender.send(address.clone()).unwrap(),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(sender);
    let mut acked = Vec::new();
    while acked.len() < 40 {
        acked.push(
            acknowledged
                .recv()
                .await
                .expect("SUBSCRIBEs are acknowledged"),
        );
    }
    process.child.kill().unwrap(); // SIGKILL
    process.child.wait().unwrap();
    for stream in streams {
        let _ = stream.await;
    }
    while let Ok(address) = acknowledged.try_recv() {
        acked.push(address);
    }
    assert!(
        acked.len() < accounts.len(),
        "the kill came too late to land mid-stream"
    );
    drop(process);

    // The file opens, every acknowledged link is there, and the integrated-accounts order agrees.
    let store = EmbeddedStore::open(&dir.path().join("pushmail.redb"))
        .expect("the store file is usable after SIGKILL");
    for address in &acked {
        let link = store.link(&Address::parse(address).unwrap()).await.unwrap();
        assert!(
            link.is_some_and(|l| l.is_linked()),
            "{address} was acknowledged but is not linked"
        );
    }
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let page = store
            .list_links(&LinkQuery {
                domain: None,
                activation: None,
                cursor,
                limit: 100,
            })
            .await
            .expect("every indexed link has its record");
        listed += page.items.len();
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(listed >= acked.len());
    for address in &accounts {
        assert!(
            store
                .account(&Address::parse(address).unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
    drop(store);

    // And the process starts again on it.
    let again = start(dir.path()).await;
    let status = client
        .get(format!("{}/accounts/{}/integration", again.admin, acked[0]))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
}
