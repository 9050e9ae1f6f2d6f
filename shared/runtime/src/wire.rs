//! Builds the store, the mailer and the services from [`Settings`], once per process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pushmail_admin_api::service::{AdminService, DkimRecords};
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

/// What a pushmail process or Lambda serves from: the store and the mailer, opened once, and
/// each service built once, the first time its main asks for it. A main takes only what it
/// serves, so a Lambda links only that: the Subscribe URL's `push()`, the admin API's
/// `admin()`, the sweeper's `push()` and `dispatcher()`, the process all of them.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    /// Resolves callback hosts (the system's resolver, but for tests).
    pub resolver: Arc<dyn Resolver>,
    pub local_mode: bool,
    push: OnceLock<Arc<PushService>>,
    notifier: OnceLock<Arc<HttpNotifier>>,
    admin: OnceLock<Arc<AdminService>>,
    dkim_records: Option<DkimRecords>,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        resolver: Arc<dyn Resolver>,
        local_mode: bool,
    ) -> Self {
        Self {
            store,
            mailer,
            resolver,
            local_mode,
            push: OnceLock::new(),
            notifier: OnceLock::new(),
            admin: OnceLock::new(),
            dkim_records: None,
        }
    }

    /// Lets the admin API publish DKIM records with `records` (the process that signs).
    pub fn with_dkim_records(mut self, records: DkimRecords) -> Self {
        self.dkim_records = Some(records);
        self
    }

    /// The Subscribe URL's service.
    pub fn push(&self) -> Arc<PushService> {
        self.push
            .get_or_init(|| {
                Arc::new(PushService::new(
                    self.store.clone(),
                    self.mailer.clone(),
                    self.resolver.clone(),
                    ServiceSettings {
                        local_mode: self.local_mode,
                    },
                ))
            })
            .clone()
    }

    /// Sends notices (the admin API's UNLINKED on removal, the dispatcher's NEW_MAIL), only to
    /// hosts the callback policy permits (public ones, but in local mode).
    pub fn notifier(&self) -> Arc<HttpNotifier> {
        self.notifier
            .get_or_init(|| {
                Arc::new(HttpNotifier::new(
                    NOTICE_CONNECT_TIMEOUT,
                    NOTICE_TIMEOUT,
                    self.resolver.clone(),
                    pushmail_core::network::CallbackPolicy {
                        local_mode: self.local_mode,
                    },
                ))
            })
            .clone()
    }

    /// The admin API's service; it resends activation mail through the push service.
    pub fn admin(&self) -> Arc<AdminService> {
        self.admin
            .get_or_init(|| {
                Arc::new(
                    AdminService::new(self.store.clone(), self.push(), self.notifier())
                        .with_dkim_records(self.dkim_records.clone()),
                )
            })
            .clone()
    }

    /// A new-mail notice dispatcher on the one notifier (a process runs one).
    pub fn dispatcher(&self, settings: DispatchSettings) -> Arc<Dispatcher> {
        Dispatcher::new(self.store.clone(), self.notifier(), settings)
    }
}

/// The process's entry: opens the store the settings name (embedded or DynamoDB with S3) and
/// the mailer. AWS configuration is loaded at most once, and only when the store or the mailer
/// needs it.
pub async fn open(settings: &Settings) -> Result<Services, WireError> {
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
    Ok(Services::new(
        store,
        mailer,
        Arc::new(SystemResolver),
        settings.local_mode(),
    ))
}

/// The Lambda functions' entry: the DynamoDB store (without message bodies) and its mailer,
/// whatever `settings.store` says, so that they link neither the embedded engine nor S3.
pub async fn open_on_aws(settings: &Settings) -> Services {
    settings.configure_password_checks();
    let aws = AwsContext::from_env().await;
    let store: Arc<dyn Store> = Arc::new(aws.dynamo_store(&settings.table));
    on_aws(&aws, store, settings)
}

fn on_aws(aws: &AwsContext, store: Arc<dyn Store>, settings: &Settings) -> Services {
    let mailer: Arc<dyn Mailer> = match settings.mail_kind() {
        MailKind::Ses => Arc::new(aws.ses_mailer(&settings.mail_from)),
        MailKind::Store => Arc::new(StoreMailer::new(store.clone(), &settings.mail_from)),
    };
    Services::new(
        store,
        mailer,
        Arc::new(SystemResolver),
        settings.local_mode(),
    )
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
