//! What happens to a message once DATA is read: inbound mail goes into each recipient's INBOX;
//! submitted mail is signed, queued for the relay (other domains), put into local recipients'
//! INBOXes and copied into the sender's Sent folder. The answer is 250 only once it is durable.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::rules::FilingRule;
use pushmail_core::types::{Account, Address};
use pushmail_store::Delivery;
use tracing::{info, warn};

use crate::session::{Envelope, Role, Session, Smtp};

/// What storing into one mailbox did.
enum Stored {
    Yes,
    Full,
    No,
}

impl Smtp {
    pub(crate) async fn accept_message(
        &self,
        session: &Session,
        message: Vec<u8>,
        peer: SocketAddr,
    ) -> String {
        let at = Utc::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let helo = session.helo.as_deref().unwrap_or("");
        match (&self.role, &session.user) {
            (Role::Submission, Some(user)) => {
                self.submitted(
                    user,
                    &session.envelope,
                    message,
                    helo,
                    peer,
                    session.tls,
                    at,
                    &id,
                )
                .await
            }
            _ => {
                self.received_mail(&session.envelope, &message, helo, peer, at, &id)
                    .await
            }
        }
    }

    async fn received_mail(
        &self,
        envelope: &Envelope,
        message: &[u8],
        helo: &str,
        peer: SocketAddr,
        at: DateTime<Utc>,
        id: &str,
    ) -> String {
        let (mut stored, mut full) = (0, 0);
        for recipient in &envelope.local {
            let mut raw = self
                .received(helo, peer, "ESMTP", id, &recipient.address, at)
                .into_bytes();
            raw.extend_from_slice(message);
            match self.deliver_to(recipient, raw, at, id).await {
                Stored::Yes => stored += 1,
                Stored::Full => full += 1,
                Stored::No => {}
            }
        }
        let all = envelope.local.len();
        match stored {
            n if n == all => format!("250 2.0.0 OK: queued as {id}"),
            0 if full == all => "552 5.2.2 Mailbox full".into(),
            0 => "451 4.3.0 Not stored; try again later".into(),
            // Some recipients have it: telling the sender to retry would duplicate it for them.
            _ => format!("250 2.0.0 OK: queued as {id} (not for every recipient)"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn submitted(
        &self,
        user: &Account,
        envelope: &Envelope,
        message: Vec<u8>,
        helo: &str,
        peer: SocketAddr,
        tls: bool,
        at: DateTime<Utc>,
        id: &str,
    ) -> String {
        let message = with_message_id(message, id, &self.settings.hostname);
        // RFC 3848: ESMTPSA is ESMTP with both STARTTLS and AUTH.
        let protocol = if tls { "ESMTPSA" } else { "ESMTPA" };
        let signed = match &self.outgoing {
            Some(outgoing) => match outgoing.sign(&user.address, &message).await {
                Ok(signed) => signed,
                Err(answer) => return answer,
            },
            None => message,
        };
        if let Some(outgoing) = self
            .outgoing
            .as_ref()
            .filter(|_| !envelope.remote.is_empty())
        {
            let mut raw = self
                .received(helo, peer, protocol, id, &envelope.remote[0], at)
                .into_bytes();
            raw.extend_from_slice(&signed);
            if let Err(error) = outgoing
                .enqueue(id, &user.address, &envelope.remote, &raw, at)
                .await
            {
                warn!(%error, id, "not queued for the relay");
                return "451 4.3.0 Not queued; try again later".into();
            }
        }
        let mut not_stored = 0;
        for recipient in &envelope.local {
            let mut raw = self
                .received(helo, peer, protocol, id, &recipient.address, at)
                .into_bytes();
            raw.extend_from_slice(&signed);
            if !matches!(self.deliver_to(recipient, raw, at, id).await, Stored::Yes) {
                not_stored += 1;
            }
        }
        let copy = self
            .store_into(
                &user.address,
                "Sent",
                signed,
                &["\\Seen".to_owned()],
                user.quota_bytes,
                at,
                id,
            )
            .await;
        if !matches!(copy, Stored::Yes) {
            warn!(account = %user.address, id, "no copy in Sent");
        }
        if not_stored == envelope.local.len() && envelope.remote.is_empty() {
            return "451 4.3.0 Not stored; try again later".into();
        }
        if not_stored > 0 {
            return format!("250 2.0.0 OK: queued as {id} (not for every recipient)");
        }
        format!("250 2.0.0 OK: queued as {id}")
    }

    /// Into the folder the recipient's filing rules pick (INBOX if none applies), created if
    /// missing; if it cannot be created, INBOX, so the message is not lost.
    async fn deliver_to(
        &self,
        recipient: &Account,
        raw: Vec<u8>,
        at: DateTime<Utc>,
        id: &str,
    ) -> Stored {
        let filing = FilingRule::file(&recipient.filing_rules, &raw);
        let address = &recipient.address;
        let mut folder = filing.folder;
        if !folder.is_inbox()
            && let Err(error) = self.store.create_folder(address, &folder, at).await
        {
            warn!(%address, %folder, %error, id, "filing folder not created; into INBOX");
            folder = FolderName::parse("INBOX").expect("INBOX is a folder name");
        }
        let flags = if filing.seen {
            vec!["\\Seen".to_owned()]
        } else {
            Vec::new()
        };
        let folder = folder.as_str().to_owned();
        self.store_into(address, &folder, raw, &flags, recipient.quota_bytes, at, id)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_into(
        &self,
        account: &Address,
        folder: &str,
        raw: Vec<u8>,
        flags: &[String],
        quota: Option<u64>,
        at: DateTime<Utc>,
        id: &str,
    ) -> Stored {
        let Ok(folder) = FolderName::parse(folder) else {
            return Stored::No;
        };
        let new = NewMessage {
            raw,
            flags: flags.to_vec(),
            internal_date: at,
        };
        match self.store.deliver(account, &folder, &new, quota).await {
            Ok(Delivery::Stored { uid, noticed, .. }) => {
                info!(%account, %folder, uid, id, "delivered");
                if let Some(hint) = self.noticed.as_ref().filter(|_| noticed) {
                    hint.notify_one();
                }
                if let Some(changed) = &self.changed {
                    // No idler listening is fine: the hint is only a hint.
                    changed.changed(account);
                }
                Stored::Yes
            }
            Ok(Delivery::OverQuota) => {
                warn!(%account, %folder, id, "not delivered: over quota");
                Stored::Full
            }
            Ok(refused) => {
                warn!(%account, %folder, ?refused, id, "not delivered");
                Stored::No
            }
            Err(error) => {
                warn!(%account, %folder, %error, id, "not delivered");
                Stored::No
            }
        }
    }

    fn received(
        &self,
        helo: &str,
        peer: SocketAddr,
        protocol: &str,
        id: &str,
        recipient: &Address,
        at: DateTime<Utc>,
    ) -> String {
        format!(
            "Received: from {} ({})\r\n\tby {} (pushmail) with {protocol} id {id}\r\n\tfor <{recipient}>; {}\r\n",
            sanitize(helo),
            peer.ip(),
            self.settings.hostname,
            at.to_rfc2822()
        )
    }
}

/// A submission agent adds the Message-ID a device left out (RFC 6409 §8.3).
fn with_message_id(message: Vec<u8>, id: &str, hostname: &str) -> Vec<u8> {
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |at| at + 2);
    let has_id = message[..header_end]
        .split(|&b| b == b'\n')
        .any(|line| line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:"));
    if has_id {
        return message;
    }
    let mut with = format!("Message-ID: <{id}@{hostname}>\r\n").into_bytes();
    with.extend_from_slice(&message);
    with
}

/// A HELO name as it may appear in a header: printable, no spaces, cut.
fn sanitize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect()
}
