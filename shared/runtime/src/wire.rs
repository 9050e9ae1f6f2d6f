//! Builds the store, the mailer and the services from [`Settings`], once per process.

use std::sync::Arc;
use std::time::Duration;

use pushmail_admin_api::service::AdminService;
use pushmail_push::dispatcher::{DispatchSettings, Dispatcher};
use pushmail_push::mailer::{Mailer, StoreMailer};
use pushmail_push::notifier::HttpNotifier;
use pushmail_push::resolver::{Resolver, SystemResolver};
use pushmail_push::service::{PushService, ServiceSettings};
use pushmail_store::{EmbeddedStore, Store, StoreError};

use crate::aws::AwsContext;
use crate::settings::{MailKind, Settings, StoreKind};

/// An inline, best-effort notice (UNLINKED) waits at most this long for the push service.
/// A notice's connection, and the whole request (spec §4's dispatcher: 5 s and 10 s).
const NOTICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const NOTICE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the embedded store {path}")]
    OpenStore {
        path: String,
        #[source]
        source: StoreError,
    },
}

/// Everything a pushmail process serves from, each built once.
#[derive(Clone)]
pub struct Wired {
    pub store: Arc<dyn Store>,
    pub push: Arc<PushService>,
    pub admin: Arc<AdminService>,
    /// Sends notices: the admin API's (UNLINKED on removal) and the dispatcher's.
    pub notifier: Arc<HttpNotifier>,
}

impl Wired {
    /// The new-mail notice dispatcher, on the same notifier.
    pub fn dispatcher(&self, settings: DispatchSettings) -> Arc<Dispatcher> {
        Dispatcher::new(self.store.clone(), self.notifier.clone(), settings)
    }
}

/// The store and the mailer, opened once; the services are built from them on demand, so a
/// Lambda links only the service it serves.
#[derive(Clone)]
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    /// Resolves callback hosts (the system's resolver, but for tests).
    pub resolver: Arc<dyn Resolver>,
    pub local_mode: bool,
}

impl Backends {
    /// The Subscribe URL's service.
    pub fn push(&self) -> Arc<PushService> {
        Arc::new(PushService::new(
            self.store.clone(),
            self.mailer.clone(),
            self.resolver.clone(),
            ServiceSettings {
                local_mode: self.local_mode,
            },
        ))
    }

    /// Notices go only to hosts the callback policy permits (public ones, but in local mode).
    fn notifier(&self) -> Arc<HttpNotifier> {
        Arc::new(HttpNotifier::new(
            NOTICE_CONNECT_TIMEOUT,
            NOTICE_TIMEOUT,
            self.resolver.clone(),
            pushmail_core::network::CallbackPolicy {
                local_mode: self.local_mode,
            },
        ))
    }

    /// The new-mail notice dispatcher alone (the sweeper's: it serves no admin API).
    pub fn dispatcher(&self, settings: DispatchSettings) -> Arc<Dispatcher> {
        Dispatcher::new(self.store.clone(), self.notifier(), settings)
    }

    /// Both services and the notifier, each built once; the admin API resends activation mail
    /// through the push service.
    pub fn services(&self) -> Wired {
        let push = self.push();
        let notifier = self.notifier();
        let admin = Arc::new(AdminService::new(
            self.store.clone(),
            push.clone(),
            notifier.clone(),
        ));
        Wired {
            store: self.store.clone(),
            push,
            admin,
            notifier,
        }
    }
}

/// Opens the store the settings name and the mailer. AWS configuration is loaded at most once,
/// and only when the store or the mailer needs it.
pub async fn open(settings: &Settings) -> Result<Backends, WireError> {
    settings.configure_password_checks();
    if settings.store == StoreKind::Dynamodb {
        let aws = AwsContext::from_env().await;
        let store: Arc<dyn Store> = Arc::new(aws.mail_store(&settings.table, &settings.bucket));
        return Ok(on_aws(&aws, store, settings));
    }
    let store: Arc<dyn Store> = Arc::new(open_embedded(settings)?);
    let mailer: Arc<dyn Mailer> = match settings.mail_kind() {
        MailKind::Ses => Arc::new(AwsContext::from_env().await.ses_mailer(&settings.mail_from)),
        MailKind::Store => Arc::new(StoreMailer::new(store.clone(), &settings.mail_from)),
    };
    Ok(Backends {
        store,
        mailer,
        resolver: Arc::new(SystemResolver),
        local_mode: settings.local_mode(),
    })
}

/// The DynamoDB store (without message bodies) and its mailer, whatever `settings.store`
/// says: the Lambda functions' entry (they link neither the embedded engine nor S3).
pub async fn open_on_aws(settings: &Settings) -> Backends {
    settings.configure_password_checks();
    let aws = AwsContext::from_env().await;
    let store: Arc<dyn Store> = Arc::new(aws.dynamo_store(&settings.table));
    on_aws(&aws, store, settings)
}

fn on_aws(aws: &AwsContext, store: Arc<dyn Store>, settings: &Settings) -> Backends {
    let mailer: Arc<dyn Mailer> = match settings.mail_kind() {
        MailKind::Ses => Arc::new(aws.ses_mailer(&settings.mail_from)),
        MailKind::Store => Arc::new(StoreMailer::new(store.clone(), &settings.mail_from)),
    };
    Backends {
        store,
        mailer,
        resolver: Arc::new(SystemResolver),
        local_mode: settings.local_mode(),
    }
}

/// The store, the mailer and both services, as the settings describe them.
pub async fn wire(settings: &Settings) -> Result<Wired, WireError> {
    Ok(open(settings).await?.services())
}

fn open_embedded(settings: &Settings) -> Result<EmbeddedStore, WireError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| WireError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let file = settings.database_file();
    EmbeddedStore::open(&file).map_err(|source| WireError::OpenStore {
        path: file.display().to_string(),
        source,
    })
}
