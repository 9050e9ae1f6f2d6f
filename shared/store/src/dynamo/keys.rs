//! The table's keys: partitions and sort keys as docs/data-model.md names them.

use super::*;

pub(super) fn audit_pk(domain: Option<&DomainName>) -> String {
    match domain {
        Some(domain) => format!("AUDIT#{domain}"),
        None => "AUDIT#SERVER".to_owned(),
    }
}

pub(super) fn domain_pk(name: &DomainName) -> String {
    format!("DOMAIN#{name}")
}

pub(super) fn account_pk(address: &Address) -> String {
    format!("ACCOUNT#{address}")
}

pub(super) fn outbox_sk(subscription_id: &str) -> String {
    format!("SUB#{subscription_id}")
}

pub(super) fn rate_pk(scope: &FailureScope<'_>, window_start: DateTime<Utc>) -> String {
    format!("RATE#{}#{}", scope.key(), window_start.timestamp())
}
