//! What the admin API answers: one serializable view per kind of answer, made from the
//! service's typed results. Fields are declared in alphabetical order, the order the answers
//! have always had on the wire.

use chrono::{DateTime, SecondsFormat, Utc};
use pushmail_core::mailbox::{Folder, MessageMeta, SpecialUse};
use pushmail_core::types::{
    Account, ActivationState, AdminToken, AuditEntry, Device, Domain, DomainName, Link, Page,
    PushSecret, ServerSettings, StoredMail, TokenScope,
};
use serde::{Serialize, Serializer};

use crate::error::AdminError;
use crate::service::{CreatedAccount, NoticeStatus};
use pushmail_store::AccountNotices;

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Every refusal: `{"detail": …, "error": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorView<'a> {
    pub detail: &'a str,
    pub error: &'a str,
}

impl<'a> From<&'a AdminError> for ErrorView<'a> {
    fn from(error: &'a AdminError) -> Self {
        Self {
            detail: error.detail(),
            error: error.code(),
        }
    }
}

/// A listing without pages.
#[derive(Debug, Serialize)]
pub struct ItemsView<T> {
    pub items: Vec<T>,
}

impl<T> ItemsView<T> {
    pub fn of<U>(items: impl IntoIterator<Item = U>, view: impl Fn(U) -> T) -> Self {
        Self {
            items: items.into_iter().map(view).collect(),
        }
    }
}

/// One page of a listing, with the opaque cursor of the next page.
#[derive(Debug, Serialize)]
pub struct PageView<T> {
    pub cursor: Option<String>,
    pub items: Vec<T>,
}

impl<T> PageView<T> {
    pub fn of<U>(page: Page<U>, view: impl Fn(U) -> T) -> Self {
        Self {
            cursor: page.cursor,
            items: page.items.into_iter().map(view).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ServerSettingsView {
    pub push_enabled: bool,
}

impl From<ServerSettings> for ServerSettingsView {
    fn from(settings: ServerSettings) -> Self {
        Self {
            push_enabled: settings.push_enabled,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DomainView {
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub deleted_items_alias: String,
    pub dkim_key_ref: Option<String>,
    pub dkim_selector: Option<String>,
    pub name: String,
    pub push_enabled: bool,
    pub sent_items_alias: String,
    pub smtp_server: Option<String>,
    pub subscribe_url: Option<String>,
}

impl From<Domain> for DomainView {
    fn from(domain: Domain) -> Self {
        Self {
            created_at: domain.created_at,
            deleted_items_alias: domain.deleted_items_alias,
            dkim_key_ref: domain.dkim_key_ref,
            dkim_selector: domain.dkim_selector,
            name: domain.name.into(),
            push_enabled: domain.push_enabled,
            sent_items_alias: domain.sent_items_alias,
            smtp_server: domain.smtp_server,
            subscribe_url: domain.subscribe_url,
        }
    }
}

/// A push secret as listed: never its value.
#[derive(Debug, Serialize)]
pub struct SecretView {
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub id: String,
}

impl From<PushSecret> for SecretView {
    fn from(secret: PushSecret) -> Self {
        Self {
            created_at: secret.created_at,
            id: secret.id,
        }
    }
}

/// A push secret as created: its value, shown this once.
#[derive(Debug, Serialize)]
pub struct NewSecretView {
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub id: String,
    pub value: String,
}

impl From<PushSecret> for NewSecretView {
    fn from(secret: PushSecret) -> Self {
        Self {
            created_at: secret.created_at,
            id: secret.id,
            value: secret.value,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub address: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub display_name: Option<String>,
    pub enabled: bool,
    /// Only when pushmail generated the password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub pushed_folders: Vec<String>,
    pub quota_bytes: Option<u64>,
    pub sender_aliases: Vec<String>,
}

impl From<Account> for AccountView {
    fn from(account: Account) -> Self {
        Self {
            address: account.address.into(),
            created_at: account.created_at,
            display_name: account.display_name,
            enabled: account.enabled,
            password: None,
            pushed_folders: account.pushed_folders,
            quota_bytes: account.quota_bytes,
            sender_aliases: account.sender_aliases.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<CreatedAccount> for AccountView {
    fn from(created: CreatedAccount) -> Self {
        Self {
            password: created.generated_password,
            ..created.account.into()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AccountDeletedView {
    pub status: &'static str,
    pub unlinked_notice: Option<NoticeStatus>,
}

#[derive(Debug, Serialize)]
pub struct FoldersView {
    pub folders: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MailView {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub body: String,
    pub id: String,
    pub subject: String,
    pub to: String,
}

impl From<StoredMail> for MailView {
    fn from(mail: StoredMail) -> Self {
        Self {
            at: mail.at,
            body: mail.body,
            id: mail.id,
            subject: mail.subject,
            to: mail.to.into(),
        }
    }
}

/// An integrated account. The callback's host only: its path may carry the push service's own
/// identifiers.
#[derive(Debug, Serialize)]
pub struct LinkView {
    pub activation: ActivationState,
    pub address: String,
    pub callback_host: Option<String>,
    pub device: Option<Device>,
    pub generation: u64,
    #[serde(serialize_with = "rfc3339")]
    pub linked_at: DateTime<Utc>,
    pub registration: String,
    pub subscription: String,
}

/// An account's filing rules, as stored (the rule type is the API's shape).
#[derive(Debug, Serialize)]
pub struct RulesView {
    pub rules: Vec<pushmail_core::rules::FilingRule>,
}

/// One integrated account: its link and how its new-mail notices are going.
#[derive(Debug, Serialize)]
pub struct IntegrationView {
    #[serde(flatten)]
    pub link: LinkView,
    pub notices: AccountNoticesView,
}

impl From<(Link, AccountNotices)> for IntegrationView {
    fn from((link, notices): (Link, AccountNotices)) -> Self {
        Self {
            link: link.into(),
            notices: notices.into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AccountNoticesView {
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_delivered_at: Option<DateTime<Utc>>,
    pub last_failure: Option<NoticeFailureView>,
    pub pending: u64,
}

#[derive(Debug, Serialize)]
pub struct NoticeFailureView {
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub error: String,
}

impl From<AccountNotices> for AccountNoticesView {
    fn from(notices: AccountNotices) -> Self {
        Self {
            last_delivered_at: notices.last_delivered_at,
            last_failure: notices.last_failure.map(|failure| NoticeFailureView {
                at: failure.at,
                // The callback's status or the transport's words: cut, one line.
                error: failure
                    .error
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .take(300)
                    .collect(),
            }),
            pending: notices.pending,
        }
    }
}

impl From<Link> for LinkView {
    fn from(link: Link) -> Self {
        let callback_host = url::Url::parse(&link.callback)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        Self {
            activation: link.activation,
            address: link.address.into(),
            callback_host,
            device: link.device,
            generation: link.generation,
            linked_at: link.linked_at,
            registration: link.registration,
            subscription: link.subscription_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UnlinkedView {
    pub status: &'static str,
    pub unlinked_notice: NoticeStatus,
}

#[derive(Debug, Serialize)]
pub struct ActivationView {
    pub activation: ActivationState,
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    pub domain: Option<String>,
    pub id: String,
    pub label: String,
    pub scope: &'static str,
    /// The token itself, only when created: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<AdminToken> for TokenView {
    fn from(token: AdminToken) -> Self {
        let (scope, domain) = match token.scope {
            TokenScope::Server => ("server", None),
            TokenScope::Domain(domain) => ("domain", Some(domain.into())),
        };
        Self {
            created_at: token.created_at,
            domain,
            id: token.id,
            label: token.label,
            scope,
            token: None,
        }
    }
}

impl From<(AdminToken, String)> for TokenView {
    fn from((token, plaintext): (AdminToken, String)) -> Self {
        Self {
            token: Some(plaintext),
            ..token.into()
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FolderView {
    pub messages: u32,
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uid_next: u32,
    pub uid_validity: u32,
}

impl From<Folder> for FolderView {
    fn from(folder: Folder) -> Self {
        Self {
            messages: folder.messages,
            name: folder.name.into(),
            special_use: folder.special_use,
            uid_next: folder.uid_next,
            uid_validity: folder.uid_validity,
        }
    }
}

/// A message as listed: its envelope, never its body.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub cc: Vec<String>,
    pub date: Option<String>,
    pub flags: Vec<String>,
    pub from: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub internal_date: DateTime<Utc>,
    pub message_id: Option<String>,
    pub size: u64,
    pub subject: Option<String>,
    pub to: Vec<String>,
    pub uid: u32,
}

impl From<MessageMeta> for MessageView {
    fn from(message: MessageMeta) -> Self {
        let envelope = message.envelope;
        Self {
            cc: envelope.cc,
            date: envelope
                .date
                .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            flags: message.flags,
            from: envelope.from,
            internal_date: message.internal_date,
            message_id: envelope.message_id,
            size: message.size,
            subject: envelope.subject,
            to: envelope.to,
            uid: message.uid,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditView {
    pub action: String,
    pub actor: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub domain: Option<String>,
    pub id: String,
    pub target: String,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        Self {
            action: entry.action,
            actor: entry.actor,
            at: entry.at,
            domain: entry.domain.map(DomainName::into),
            id: entry.id,
            target: entry.target,
        }
    }
}
