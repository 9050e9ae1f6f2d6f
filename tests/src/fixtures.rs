//! Stored things as the store tests build them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::types::{
    Account, ActivationJob, ActivationState, Address, Domain, DomainName, Link, LinkState, now,
};
use pushmail_store::{LinkInsert, Store};

pub fn domain(name: &str) -> Domain {
    let mut domain = Domain::new(DomainName::parse(name).unwrap(), now());
    domain.push_enabled = true;
    domain
}

pub fn account(address: &str) -> Account {
    Account {
        address: Address::parse(address).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        enabled: true,
        display_name: None,
        pushed_folders: vec![],
        created_at: now(),
        revision: 0,
        quota_bytes: None,
        sender_aliases: Vec::new(),
        filing_rules: Vec::new(),
    }
}

/// Creates [`account`] at `address` (it must be new) with its default folders: a mailbox that
/// mail may be stored in.
pub async fn mailbox_account(store: &dyn Store, address: &Address) {
    assert!(
        store
            .create_account(&account(address.as_str()))
            .await
            .expect("account"),
        "{address} existed"
    );
    store
        .create_default_folders(address, now())
        .await
        .expect("folders");
}

/// [`mailbox_account`] at `address` with `count` messages in its INBOX, the `n`th written by
/// `message(n)`, appended as many at once as an APPEND may.
pub async fn mailbox_with(
    store: &dyn Store,
    address: &Address,
    count: usize,
    message: impl Fn(usize) -> String,
) {
    mailbox_account(store, address).await;
    let all: Vec<usize> = (0..count).collect();
    for batch in all.chunks(pushmail_core::mailbox::MAX_MESSAGES_PER_APPEND) {
        let messages: Vec<NewMessage> = batch.iter().map(|&n| new_message(message(n))).collect();
        let stored = store
            .append_all(address, &inbox(), &messages, None)
            .await
            .expect("append");
        assert!(
            matches!(stored, pushmail_store::Delivery::Stored { .. }),
            "{stored:?}"
        );
    }
}

/// The folder every account has.
pub fn inbox() -> FolderName {
    FolderName::parse("INBOX").unwrap()
}

/// `raw` as a message newly arrived: no flags, received now.
pub fn new_message(raw: impl Into<Vec<u8>>) -> NewMessage {
    NewMessage {
        raw: raw.into(),
        flags: Vec::new(),
        internal_date: now(),
        owner_known_at: None,
    }
}

/// alice@example.com as a [`mailbox_account`] in `store`: the set-up of the mailbox tests that
/// run on both backends (`on_both_backends!`).
pub async fn with_mailbox_account(store: Arc<dyn Store>) -> (Arc<dyn Store>, Address) {
    let alice = Address::parse("alice@example.com").unwrap();
    mailbox_account(store.as_ref(), &alice).await;
    (store, alice)
}

/// Inserts a link for an account that exists as [`account`] makes it (created if missing).
pub async fn insert(store: &dyn Store, link: &Link, job: &ActivationJob) -> LinkInsert {
    let owner = account(link.address.as_str());
    if store.account(&link.address).await.unwrap().is_none() {
        store.put_account(&owner).await.unwrap();
    }
    store
        .insert_link(link, job, &owner, link.linked_at)
        .await
        .unwrap()
}

pub fn link(
    address: &str,
    registration: &str,
    generation: u64,
    at: DateTime<Utc>,
) -> (Link, ActivationJob) {
    let address = Address::parse(address).unwrap();
    let subscription_id = format!("sub_{}", uuid::Uuid::new_v4().simple());
    let link = Link {
        address: address.clone(),
        subscription_id: subscription_id.clone(),
        registration: registration.into(),
        generation,
        callback: "https://push.example.net/n".into(),
        device: None,
        state: LinkState::Linked,
        activation: ActivationState::Pending,
        linked_at: at,
        unlinked_at: None,
    };
    let job = ActivationJob {
        subscription_id,
        address,
        device: None,
        linked_at: at,
        attempts: 0,
        not_before: at,
    };
    (link, job)
}
