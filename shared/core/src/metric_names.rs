//! The metrics pushmail records, named once: each crate records through the `metrics` facade
//! under these names; the process describes them (`DESCRIBED`) and exports them (Prometheus text
//! on `--metrics-addr`).

/// SMTP and IMAP sessions open now; label `protocol` (smtp, submission, imap).
pub const SESSIONS_OPEN: &str = "pushmail_sessions_open";
/// Sessions started; label `protocol`.
pub const SESSIONS: &str = "pushmail_sessions_total";
/// Messages offered to a mailbox; label `outcome`: stored, over_quota, account_gone, refused,
/// store_error.
pub const DELIVERIES: &str = "pushmail_deliveries_total";
/// Password checks; labels `surface` (subscribe, self_service, submission, imap) and `outcome`
/// (ok, wrong, limited, busy, error).
pub const CREDENTIAL_CHECKS: &str = "pushmail_credential_checks_total";
/// New-mail notices sent to push services; label `outcome`: delivered, deferred, stale,
/// expired, ended (the callback answered 404/410).
pub const NOTICES: &str = "pushmail_notices_total";
/// Seconds from a notice's mail arriving to the push service taking it.
pub const NOTICE_LATENCY: &str = "pushmail_notice_latency_seconds";
/// Accounts with a notice due, as the dispatcher's last pass found them (at most a batch).
pub const NOTICE_ACCOUNTS_DUE: &str = "pushmail_notice_accounts_due";
/// Seconds the oldest waiting notice has waited, at the dispatcher's last pass (0: none).
pub const NOTICE_OLDEST: &str = "pushmail_notice_oldest_seconds";

/// Device mail to other domains due for an attempt, at the relay's last pass (at most a batch).
pub const RELAYS_DUE: &str = "pushmail_relays_due";
/// Seconds since the oldest due relay job was queued, at the relay's last pass (0: none).
pub const RELAY_OLDEST: &str = "pushmail_relay_oldest_due_seconds";

/// Requests to the Subscribe URL; label `outcome`: the answer's status (subscribed,
/// unsubscribed, not_subscribed, ignored_stale, …) or its error code (bad_signature, …).
pub const PUSH_REQUESTS: &str = "pushmail_push_requests_total";

/// SMTP replies refusing something (4xx, 5xx); label `code`: the reply code and enhanced code
/// ("550 5.1.1"), the server's own, so few.
pub const SMTP_REFUSALS: &str = "pushmail_smtp_refusals_total";

/// Failures of the store's backend (DynamoDB or S3 answering an error or unreachable, the
/// embedded database failing); label `backend`. A refused condition is not one.
pub const STORE_ERRORS: &str = "pushmail_store_errors_total";

/// IMAP sessions that fell out of an account's change-log window and read a folder again;
/// label `kind`: selected (the selected folder), notify (a NOTIFY session's folders). Often: the
/// window is too small for how far sessions fall behind.
pub const CHANGE_LOG_LOST: &str = "pushmail_imap_change_log_lost_total";

/// Every metric with its kind and help text, for the exporter.
pub const DESCRIBED: &[(&str, MetricKind, &str)] = &[
    (
        CHANGE_LOG_LOST,
        MetricKind::Counter,
        "IMAP sessions that fell out of the change log's window and read the folder again",
    ),
    (
        SESSIONS_OPEN,
        MetricKind::Gauge,
        "SMTP and IMAP sessions open now",
    ),
    (
        SESSIONS,
        MetricKind::Counter,
        "SMTP and IMAP sessions started",
    ),
    (
        DELIVERIES,
        MetricKind::Counter,
        "Messages offered to a mailbox, by outcome",
    ),
    (
        CREDENTIAL_CHECKS,
        MetricKind::Counter,
        "Password checks, by surface and outcome",
    ),
    (
        NOTICES,
        MetricKind::Counter,
        "New-mail notices to push services, by outcome",
    ),
    (
        NOTICE_LATENCY,
        MetricKind::Histogram,
        "Seconds from mail arriving to its notice taken",
    ),
    (
        NOTICE_ACCOUNTS_DUE,
        MetricKind::Gauge,
        "Accounts with a notice due (at most a batch)",
    ),
    (
        NOTICE_OLDEST,
        MetricKind::Gauge,
        "Seconds the oldest waiting notice has waited",
    ),
    (
        RELAYS_DUE,
        MetricKind::Gauge,
        "Device mail to other domains due for an attempt (at most a batch)",
    ),
    (
        RELAY_OLDEST,
        MetricKind::Gauge,
        "Seconds since the oldest due relay job was queued",
    ),
    (
        PUSH_REQUESTS,
        MetricKind::Counter,
        "Requests to the Subscribe URL, by outcome",
    ),
    (
        SMTP_REFUSALS,
        MetricKind::Counter,
        "SMTP replies refusing something, by code",
    ),
    (
        STORE_ERRORS,
        MetricKind::Counter,
        "Failures of the store's backend",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}
