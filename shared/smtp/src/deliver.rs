//! What happens to a message once DATA is read: inbound mail goes into each recipient's INBOX;
//! submitted mail is signed, queued for the relay (other domains), put into local recipients'
//! INBOXes and copied into the sender's Sent folder. The answer is 250 only once it is durable.

use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use pushmail_core::folder::FolderName;
use pushmail_core::header::MessageHeader;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::rules::FilingRule;
use pushmail_core::types::{Account, Address};
use pushmail_store::Delivery;

use crate::budget::Held;
use crate::dsn::{Failure, bounce_into_inbox, delivery_status_notification};
use crate::reply::{self, Enhanced, Reply};
use tracing::{info, warn};

use crate::session::{Envelope, Role, Session, Smtp};

/// What storing into one mailbox did.
enum Stored {
    Yes,
    Full,
    /// The account was deleted (or deleted and created again) since RCPT.
    Gone,
    No,
}

impl Smtp {
    pub(crate) async fn accept_message(
        &self,
        session: &Session,
        held: Held,
        peer: SocketAddr,
    ) -> Reply {
        // The budget is held until the message is stored (the end of this call).
        let Held { message, _budget } = held;
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
    ) -> Reply {
        if let Err(answer) = self.all_can_take(&envelope.local, message.len()).await {
            return answer;
        }
        let header = MessageHeader::parse(message);
        let mut failed = Vec::new();
        // Where the envelope said replies about it go, recorded once it is delivered
        // (RFC 5321 §4.4): `<>` for a bounce.
        let return_path = format!(
            "Return-Path: <{}>\r\n",
            envelope.from.as_deref().map(sanitize).unwrap_or_default()
        );
        for recipient in &envelope.local {
            let mut raw = return_path.clone().into_bytes();
            raw.extend_from_slice(
                self.received(helo, peer, "ESMTP", id, Some(&recipient.address), at)
                    .as_bytes(),
            );
            raw.extend_from_slice(message);
            if !self.deliver_surely(recipient, raw, &header, at, id).await {
                failed.push(recipient.address.clone());
            }
        }
        if failed.len() == envelope.local.len() {
            return reply::NOT_STORED;
        }
        if !failed.is_empty() {
            let sender = envelope
                .from
                .as_deref()
                .and_then(|s| Address::parse(s).ok());
            self.tell_sender(sender.as_ref(), message, at, &failed, id)
                .await;
        }
        queued(id)
    }

    /// Whether every local recipient's mailbox can take `size` more octets: checked for all
    /// before anyone gets the message, so a full one refuses it whole (and the sender is told)
    /// rather than a 250 that leaves it out.
    async fn all_can_take(&self, recipients: &[Account], size: usize) -> Result<(), Reply> {
        for recipient in recipients {
            match self.has_room(recipient, size).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Reply::formatted(
                        552,
                        Enhanced(5, 2, 2),
                        format!(
                            "Mailbox full for <{}>: delivered to no one",
                            recipient.address
                        ),
                    ));
                }
                Err(error) => {
                    warn!(account = %recipient.address, %error, "usage not read");
                    return Err(reply::NOT_STORED);
                }
            }
        }
        Ok(())
    }

    /// Whether `account`'s mailbox can take `size` more octets within its quota (RCPT asks
    /// with the announced size, DATA with the real one).
    pub(crate) async fn has_room(
        &self,
        account: &Account,
        size: usize,
    ) -> Result<bool, pushmail_store::StoreError> {
        let Some(quota) = account.quota_bytes else {
            return Ok(true);
        };
        let used = self.store.mailbox_usage(&account.address).await?;
        Ok(used.saturating_add(size as u64) <= quota)
    }

    /// Delivers to one recipient whose mailbox was found able to take the message: a failing
    /// store is tried again, and a racing delivery that filled the quota since the check does
    /// not make this one lost (it is let in over the quota, by one message).
    async fn deliver_surely(
        &self,
        recipient: &Account,
        raw: Vec<u8>,
        header: &MessageHeader,
        at: DateTime<Utc>,
        id: &str,
    ) -> bool {
        let mut enforce_quota = true;
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            match self
                .deliver_to(recipient, raw.clone(), header, at, id, enforce_quota)
                .await
            {
                Stored::Yes => return true,
                Stored::Full => enforce_quota = false,
                Stored::Gone => return false,
                Stored::No => {}
            }
        }
        false
    }

    /// Tells the envelope sender that `failed` did not get the message (RFC 3464): into the
    /// sender's INBOX if it is a local account, else through the relay if there is one. The
    /// null sender is never told (RFC 5321 §4.5.5).
    async fn tell_sender(
        &self,
        sender: Option<&Address>,
        message: &[u8],
        at: DateTime<Utc>,
        failed: &[Address],
        id: &str,
    ) {
        let Some(sender) = sender else {
            warn!(
                id,
                failed = failed.len(),
                "not delivered to every recipient; null sender, no bounce"
            );
            return;
        };
        let failures: Vec<Failure> = failed
            .iter()
            .map(|recipient| Failure {
                recipient: recipient.clone(),
                diagnostic: "451 4.3.0 the mailbox store did not take it".into(),
                permanent: false,
            })
            .collect();
        if let Ok(Some(account)) = self.store.account(sender).await {
            let hostname = &self.settings.hostname;
            let delivery = bounce_into_inbox(
                self.store.as_ref(),
                hostname,
                sender,
                message,
                at,
                &failures,
                account.created_at,
            )
            .await;
            if matches!(
                self.stored(sender, &FolderName::inbox(), delivery, id),
                Stored::Yes
            ) {
                return;
            }
        } else if let Some(outgoing) = &self.outgoing {
            let dsn = delivery_status_notification(
                &self.settings.hostname,
                sender,
                message,
                at,
                &failures,
            );
            let bounce_id = format!("{id}-dsn");
            if outgoing
                .enqueue(&bounce_id, sender, std::slice::from_ref(sender), &dsn, at)
                .await
                .is_ok()
            {
                return;
            }
        }
        warn!(id, %sender, failed = failed.len(), "not delivered to every recipient, and the sender could not be told");
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
    ) -> Reply {
        // The header From is who the recipient sees: it must be the account or one of its
        // aliases, as MAIL FROM must (else DKIM would sign a forged author); a message
        // without one gets the account's (RFC 6409 §8.1).
        let header = MessageHeader::parse(&message);
        let (message, header) = match header.author() {
            None => (
                with_from(message, &user.address),
                header.with_author(user.address.as_str()),
            ),
            Some(from) if Address::parse(from).is_ok_and(|from| user.may_send_as(&from)) => {
                (message, header)
            }
            Some(_) => {
                return Reply::formatted(
                    550,
                    Enhanced(5, 7, 1),
                    format!(
                        "The From header must be {}, the account you logged in as, or one of its aliases",
                        user.address
                    ),
                );
            }
        };
        let message = with_message_id(message, id, &self.settings.hostname);
        // RFC 3848: ESMTPSA is ESMTP with both STARTTLS and AUTH.
        let protocol = if tls { "ESMTPSA" } else { "ESMTPA" };
        if let Err(answer) = self.all_can_take(&envelope.local, message.len()).await {
            return answer;
        }
        let signed = match &self.outgoing {
            Some(outgoing) => match outgoing.sign(&user.address, message).await {
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
            // One copy for every remote recipient: it names one only when there is one, so
            // no recipient learns of another (a Bcc).
            let only = match envelope.remote.as_slice() {
                [only] => Some(only),
                _ => None,
            };
            let mut raw = self
                .received(helo, peer, protocol, id, only, at)
                .into_bytes();
            raw.extend_from_slice(&signed);
            if let Err(error) = outgoing
                .enqueue(id, &user.address, &envelope.remote, &raw, at)
                .await
            {
                warn!(%error, id, "not queued for the relay");
                return Reply::new(451, Enhanced(4, 3, 0), "Not queued; try again later");
            }
        }
        let mut failed = Vec::new();
        for recipient in &envelope.local {
            let mut raw = self
                .received(helo, peer, protocol, id, Some(&recipient.address), at)
                .into_bytes();
            raw.extend_from_slice(&signed);
            if !self.deliver_surely(recipient, raw, &header, at, id).await {
                failed.push(recipient.address.clone());
            }
        }
        if failed.len() == envelope.local.len() && envelope.remote.is_empty() {
            // Nothing went anywhere: the device sends it again, so no Sent copy now (one per
            // retry would pile up).
            return reply::NOT_STORED;
        }
        if !failed.is_empty() {
            self.tell_sender(Some(&user.address), &signed, at, &failed, id)
                .await;
        }
        // Once, with the 250: the message went.
        let sent = FolderName::parse("Sent").ok();
        let copy = match &sent {
            Some(sent) => {
                self.store_into(
                    user,
                    sent,
                    signed,
                    &["\\Seen".to_owned()],
                    user.quota_bytes,
                    at,
                    id,
                )
                .await
            }
            None => Stored::No,
        };
        if !matches!(copy, Stored::Yes) {
            warn!(account = %user.address, id, "no copy in Sent");
        }
        queued(id)
    }

    /// Into the folder the recipient's filing rules pick (INBOX if none applies), created if
    /// missing; if it cannot be created, INBOX, so the message is not lost. The rules read the
    /// message's header as it came, parsed once for all recipients (not the trace fields this
    /// server adds for each).
    async fn deliver_to(
        &self,
        recipient: &Account,
        raw: Vec<u8>,
        header: &MessageHeader,
        at: DateTime<Utc>,
        id: &str,
        enforce_quota: bool,
    ) -> Stored {
        let filing = FilingRule::file(&recipient.filing_rules, header);
        let address = &recipient.address;
        let mut folder = filing.folder;
        if !folder.is_inbox()
            && let Err(why) = self.filing_folder(address, &folder, at).await
        {
            warn!(%address, %folder, why, id, "filing folder not created; into INBOX");
            folder = FolderName::inbox();
        }
        let flags = if filing.seen {
            vec!["\\Seen".to_owned()]
        } else {
            Vec::new()
        };
        let quota = recipient.quota_bytes.filter(|_| enforce_quota);
        self.store_into(recipient, &folder, raw, &flags, quota, at, id)
            .await
    }

    /// The folder a filing rule names, created if missing, within the account's folder limit
    /// (the one IMAP CREATE keeps).
    async fn filing_folder(
        &self,
        address: &Address,
        folder: &FolderName,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        if self
            .store
            .folder(address, folder)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let count = self
            .store
            .folders(address)
            .await
            .map_err(|e| e.to_string())?
            .len();
        if count >= self.settings.max_folders {
            return Err(format!(
                "the account has {count} folders, the most it may have"
            ));
        }
        self.store
            .create_folder(address, folder, at)
            .await
            .map_err(|e| e.to_string())
    }

    /// Stores for `owner`, the account as the transaction read it: a new account at its
    /// address since (deleted and created again) does not get it.
    #[allow(clippy::too_many_arguments)]
    async fn store_into(
        &self,
        owner: &Account,
        folder: &FolderName,
        raw: Vec<u8>,
        flags: &[String],
        quota: Option<u64>,
        at: DateTime<Utc>,
        id: &str,
    ) -> Stored {
        let account = &owner.address;
        let new = NewMessage {
            raw,
            flags: flags.to_vec(),
            internal_date: at,
            owner_known_at: Some(owner.created_at),
        };
        let delivery = self.store.deliver(account, folder, &new, quota).await;
        self.stored(account, folder, delivery, id)
    }

    /// What a delivery did, logged, with the dispatcher and the idlers told of a stored one.
    fn stored(
        &self,
        account: &Address,
        folder: &FolderName,
        delivery: Result<Delivery, pushmail_store::StoreError>,
        id: &str,
    ) -> Stored {
        let outcome = match &delivery {
            Ok(Delivery::Stored { .. }) => "stored",
            Ok(Delivery::OverQuota) => "over_quota",
            Ok(Delivery::NoSuchAccount) => "account_gone",
            Ok(_) => "refused",
            Err(_) => "store_error",
        };
        metrics::counter!(pushmail_core::metric_names::DELIVERIES, "outcome" => outcome)
            .increment(1);
        match delivery {
            Ok(Delivery::Stored { uid, noticed, .. }) => {
                info!(%account, %folder, uid, id, "delivered");
                self.arrivals.stored(account, noticed);
                Stored::Yes
            }
            Ok(Delivery::OverQuota) => {
                warn!(%account, %folder, id, "not delivered: over quota");
                Stored::Full
            }
            Ok(Delivery::NoSuchAccount) => {
                warn!(%account, id, "not delivered: the account is gone");
                Stored::Gone
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
        recipient: Option<&Address>,
        at: DateTime<Utc>,
    ) -> String {
        let recipient = recipient
            .map(|r| format!("\r\n\tfor <{r}>"))
            .unwrap_or_default();
        format!(
            "Received: from {} ({})\r\n\tby {} (pushmail) with {protocol} id {id}{recipient}; {}\r\n",
            sanitize(helo),
            peer.ip(),
            self.settings.hostname,
            at.to_rfc2822()
        )
    }
}

/// The answer to a message that went everywhere it was sent, or whose sender was told.
fn queued(id: &str) -> Reply {
    Reply::formatted(250, Enhanced(2, 0, 0), format!("OK: queued as {id}"))
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

/// A submission agent adds the From a device left out (RFC 6409 §8.1): the account's.
fn with_from(message: Vec<u8>, account: &Address) -> Vec<u8> {
    let mut with = format!("From: <{account}>\r\n").into_bytes();
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
