//! Builds the store, the mailer and the services from [`Settings`], once per process.

use std::sync::Arc;
use std::time::Duration;

use pushmail_admin_api::service::AdminService;
use pushmail_push::mailer::{Mailer, StoreMailer};
use pushmail_push::notifier::HttpNotifier;
use pushmail_push::service::{PushService, ServiceSettings};
use pushmail_store::{EmbeddedStore, Store, StoreError};

use crate::aws::AwsContext;
use crate::settings::{MailKind, Settings, StoreKind};

/// An inline, best-effort notice (UNLINKED) waits at most this long for the push service.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Everything a pushmail process serves from.
#[derive(Clone)]
pub struct Wired {
    pub store: Arc<dyn Store>,
    pub push: Arc<PushService>,
    pub admin: Arc<AdminService>,
}

/// Opens the store the settings name and builds the mailer and both services on it. AWS
/// configuration is loaded at most once, and only when the store or the mailer needs it.
pub async fn wire(settings: &Settings) -> Result<Wired, WireError> {
    let aws = match (settings.store, settings.mail_kind()) {
        (StoreKind::Embedded, MailKind::Store) => None,
        _ => Some(AwsContext::from_env().await),
    };
    let store: Arc<dyn Store> = match (settings.store, &aws) {
        (StoreKind::Dynamodb, Some(aws)) => Arc::new(aws.dynamo_store(&settings.table)),
        _ => Arc::new(open_embedded(settings)?),
    };
    let mailer: Arc<dyn Mailer> = match (settings.mail_kind(), &aws) {
        (MailKind::Ses, Some(aws)) => Arc::new(aws.ses_mailer(&settings.mail_from)),
        _ => Arc::new(StoreMailer::new(store.clone())),
    };
    Ok(wire_on(store, mailer, settings.local_mode()))
}

/// The services on a given store and mailer (the test harness's entry, too).
pub fn wire_on(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>, local_mode: bool) -> Wired {
    let push = Arc::new(PushService::new(
        store.clone(),
        mailer,
        ServiceSettings { local_mode },
    ));
    let admin = Arc::new(AdminService::new(
        store.clone(),
        push.clone(),
        Arc::new(HttpNotifier::new(NOTICE_TIMEOUT)),
    ));
    Wired { store, push, admin }
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
