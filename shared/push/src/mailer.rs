//! Outgoing system mail (the activation mail of spec §3) behind one trait; SES v1 on AWS.

use async_trait::async_trait;
use aws_sdk_ses::Client;
use aws_sdk_ses::types::{Body, Content, Destination, Message};
use chrono::{DateTime, SecondsFormat, Utc};

use pushmail_core::types::{Address, Device};

pub const ACTIVATION_SUBJECT: &str = "Email activation information (push mail)";

/// The mail that tells the device owner that push is live for their account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationMail {
    pub to: Address,
    pub device: Option<Device>,
    pub linked_at: DateTime<Utc>,
    pub subscription_id: String,
}

impl ActivationMail {
    pub fn subject(&self) -> &'static str {
        ACTIVATION_SUBJECT
    }

    pub fn text_body(&self) -> String {
        let device = match &self.device {
            Some(Device { pin, model }) => {
                let model = model.as_deref().unwrap_or("a BlackBerry device");
                match pin {
                    Some(pin) => format!("{model} (PIN {pin})"),
                    None => model.to_owned(),
                }
            }
            None => "your device".to_owned(),
        };
        format!(
            "Push mail is now active for the account {account}.\r\n\
             \r\n\
             Device: {device}\r\n\
             Activated: {at}\r\n\
             Subscription: {id}\r\n\
             \r\n\
             New mail in your Inbox and in the folders you chose will be pushed to {device}.\r\n\
             If you did not add this account to a device, ask your mail administrator to remove\r\n\
             the integration.\r\n",
            account = self.to,
            at = self.linked_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            id = self.subscription_id,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail service refused or failed; the mail was not sent and may be tried again.
    #[error("mail was not sent: {0}")]
    NotSent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send_activation(&self, mail: &ActivationMail) -> Result<(), MailError>;
}

impl ActivationMail {
    /// The mail as an RFC 5322 message from `from`, with CRLF lines, as it lands in a mailbox.
    pub fn to_message(&self, from: &str) -> Vec<u8> {
        let (name, address) = match from.rsplit_once('<') {
            Some((name, rest)) => (name.trim().trim_matches('"'), rest.trim_end_matches('>')),
            None => ("", from),
        };
        mail_builder::MessageBuilder::new()
            .from((name, address))
            .to(self.to.as_str())
            .subject(self.subject())
            .date(self.linked_at.timestamp())
            .message_id(format!("{}@pushmail", self.subscription_id))
            .text_body(self.text_body())
            .write_to_vec()
            .unwrap_or_default()
    }
}

/// [`Mailer`] that keeps each mail in the store for the recipient: as a message in the
/// account's INBOX (what a mail client sees), and in the kept-mail list the admin API shows.
/// The local process's choice when no mail service is configured, so no mail is dropped.
pub struct StoreMailer {
    store: std::sync::Arc<dyn pushmail_store::Store>,
    from: String,
}

impl StoreMailer {
    pub fn new(store: std::sync::Arc<dyn pushmail_store::Store>, from: impl Into<String>) -> Self {
        Self {
            store,
            from: from.into(),
        }
    }
}

#[async_trait]
impl Mailer for StoreMailer {
    async fn send_activation(&self, mail: &ActivationMail) -> Result<(), MailError> {
        let stored = pushmail_core::types::StoredMail {
            id: format!("mail_{}", uuid::Uuid::new_v4().simple()),
            to: mail.to.clone(),
            subject: mail.subject().to_owned(),
            body: mail.text_body(),
            at: pushmail_core::types::now(),
        };
        let not_sent = |e: pushmail_store::StoreError| MailError::NotSent(e.to_string());
        // The folders come with the account; created here too, for accounts made before that.
        self.store
            .create_default_folders(&mail.to, stored.at)
            .await
            .map_err(not_sent)?;
        let message = pushmail_core::mailbox::NewMessage {
            raw: mail.to_message(&self.from),
            flags: Vec::new(),
            internal_date: stored.at,
            // For the account that subscribed, not one created at its address since.
            owner_known_at: Some(mail.linked_at),
        };
        let inbox = pushmail_core::folder::FolderName::inbox();
        match self
            .store
            .deliver(&mail.to, &inbox, &message, None)
            .await
            .map_err(not_sent)?
        {
            pushmail_store::Delivery::Stored { .. } => {}
            refused => return Err(MailError::NotSent(format!("INBOX refused it: {refused:?}"))),
        }
        self.store.record_mail(&stored).await.map_err(not_sent)
    }
}

/// [`Mailer`] on Amazon SES (v1 API: LocalStack's free edition has no SESv2).
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: Client, from: String) -> Self {
        Self { client, from }
    }
}

fn content(text: impl Into<String>) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::NotSent(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send_activation(&self, mail: &ActivationMail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(content(mail.subject())?)
            .body(Body::builder().text(content(mail.text_body())?).build())
            .build();
        self.client
            .send_email()
            .source(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .message(message)
            .send()
            .await
            .map_err(|e| {
                MailError::NotSent(aws_sdk_ses::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(())
    }
}
