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

/// `<unix ms, 20 digits>#<id>`: an index sort key in time order (a queue's due order, the notice
/// backlog's order of arrival).
pub(super) fn timed_index_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{:020}#{id}", at.timestamp_millis().max(0))
}

/// The time a [`timed_index_key`] starts with.
pub(super) fn timed_index_time(key: &str) -> Option<DateTime<Utc>> {
    key.get(..20)?
        .parse()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
}

/// The first key of `at`'s next millisecond on [`timed_index_key`]'s order: every key before it
/// is due at `at`.
pub(super) fn timed_index_end(at: DateTime<Utc>) -> String {
    format!("{:020}", at.timestamp_millis().saturating_add(1).max(0))
}
