//! The Subscribe URL's logic (spec §1–3): every rule between a parsed request and the store.
//! Transport adapters (Lambda, local HTTP) hand it an [`IncomingRequest`] and send back the [`Reply`].

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tracing::{error, info, warn};

use crate::mailer::{ActivationMail, Mailer};
use crate::resolver::{Resolver, check_host};
use pushmail_core::protocol::{
    self, CallbackPolicy, ErrorCode, MAX_BODY_BYTES, MAX_LIVE_SECRETS, PushRequest,
    REPLAY_WINDOW_SECS, Refusal, Reply, SignatureHeaders, Subscribe, UncheckedRequest, Unsubscribe,
};
use pushmail_core::types::{ActivationJob, ActivationState, Link, LinkState};
use pushmail_store::credentials::{CredentialError, check_credentials};
use pushmail_store::{LinkInsert, Store, StoreError, Surface, Unlink};

/// The key the signature check spends its padding MACs on (never a domain's secret: a match
/// with it does not count).
const UNUSED_SECRET: &[u8] = b"pushmail: no such push secret";
/// SUBSCRIBE needs an IMAP listener heartbeat younger than this.
pub const IMAP_LIVENESS_SECS: i64 = 60;
/// How long one sender holds an activation job before another may take it over.
const ACTIVATION_LEASE_SECS: i64 = 60;
const ACTIVATION_BACKOFF_FIRST_SECS: i64 = 30;
const ACTIVATION_BACKOFF_MAX_SECS: i64 = 3600;
const SWEEP_BATCH: usize = 50;

/// One HTTP request to the Subscribe URL, as the transport saw it.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    pub content_type: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
    /// The client's IP address, for per-source rate limiting, when the transport knows it.
    pub source: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceSettings {
    /// Local mode: callbacks may be plain http to a loopback host.
    pub local_mode: bool,
}

/// What became of one attempt to send an activation mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// SES failed; the job waits for its backoff to pass.
    Deferred,
    /// Another sender holds the job, its backoff has not passed, or it is gone.
    NotDue,
    /// The subscription was superseded or unlinked before its mail went out.
    Discarded,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sent: usize,
    pub deferred: usize,
    pub discarded: usize,
}

pub struct PushService {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    resolver: Arc<dyn Resolver>,
    settings: ServiceSettings,
}

/// How a failed credential check is told to the push service.
fn credential_refusal(error: CredentialError) -> Refusal {
    match error {
        CredentialError::BadCredentials => {
            Refusal::new(ErrorCode::BadCredentials, error.to_string())
        }
        CredentialError::RateLimited { .. } | CredentialError::Busy => Refusal {
            code: ErrorCode::RateLimited,
            detail: error.to_string(),
            retry_after_secs: error.retry_after_secs(),
        },
        CredentialError::Store(error) => error.into(),
    }
}

impl PushService {
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        resolver: Arc<dyn Resolver>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            store,
            mailer,
            resolver,
            settings,
        }
    }

    /// Where callbacks may point (spec §2).
    pub fn callback_policy(&self) -> CallbackPolicy {
        CallbackPolicy {
            local_mode: self.settings.local_mode,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Answers one request to the Subscribe URL.
    pub async fn handle(&self, request: IncomingRequest<'_>) -> Reply {
        let now = pushmail_core::types::now();
        let (reply, outcome) = match self.answer(request, now).await {
            Ok(reply) => {
                let outcome = match reply.body.get("status").and_then(|s| s.as_str()) {
                    Some("subscribed") => "subscribed",
                    Some("unsubscribed") => "unsubscribed",
                    Some("not_subscribed") => "not_subscribed",
                    Some("ignored_stale") => "ignored_stale",
                    _ => "other",
                };
                (reply, outcome)
            }
            Err(refusal) => {
                // Debug-quoted: the detail may quote the request, which must not forge log lines.
                info!(code = refusal.code.as_str(), detail = ?refusal.detail, "request refused");
                let outcome = refusal.code.as_str();
                (refusal.into(), outcome)
            }
        };
        metrics::counter!(pushmail_core::metric_names::PUSH_REQUESTS, "outcome" => outcome)
            .increment(1);
        reply
    }

    async fn answer(
        &self,
        request: IncomingRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Reply, Refusal> {
        check_content_type(request.content_type)?;
        if request.body.len() > MAX_BODY_BYTES {
            return Err(Refusal::new(
                ErrorCode::TooLarge,
                "the body is larger than 16 KiB",
            ));
        }
        let headers = SignatureHeaders::parse(request.timestamp, request.signature)?;
        headers.check_clock(now)?;
        let unchecked = UncheckedRequest::parse(request.body)?;
        let email = unchecked.email()?;
        self.check_signature(&headers, &email.domain(), request.body)
            .await?;
        let expires = now + Duration::seconds(REPLAY_WINDOW_SECS);
        if !self
            .store
            .remember_signature(&headers.replay_key(), now, expires)
            .await?
        {
            return Err(Refusal::new(
                ErrorCode::BadSignature,
                "this signature was already used: sign every attempt afresh",
            ));
        }
        match unchecked.validate(self.callback_policy())? {
            PushRequest::Subscribe(subscribe) => {
                let signed_at = DateTime::from_timestamp(headers.timestamp, 0).unwrap_or(now);
                self.subscribe(subscribe, request.source, signed_at, now)
                    .await
            }
            PushRequest::Unsubscribe(unsubscribe) => self.unsubscribe(unsubscribe, now).await,
        }
    }

    /// Accepts a signature made with any live secret of the email's domain. An unknown domain
    /// gets the same answer as a wrong signature, and the same work: one read of the domain's
    /// secrets (none for an unknown domain) and [`MAX_LIVE_SECRETS`] MACs, padded with a
    /// throw-away key, so the time taken does not tell which domains exist.
    async fn check_signature(
        &self,
        headers: &SignatureHeaders,
        domain: &pushmail_core::types::DomainName,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let secrets = self.store.push_secrets(domain).await?;
        let padding = std::iter::repeat_n(
            UNUSED_SECRET,
            (MAX_LIVE_SECRETS as usize).saturating_sub(secrets.len()),
        );
        // Every key is tried, not just until one matches, so the time says nothing either.
        let matched = secrets
            .iter()
            .map(|secret| (secret.value.as_bytes(), true))
            .chain(padding.map(|key| (key, false)))
            .fold(false, |any, (key, real)| {
                (headers.is_signed_by(key, body) & real) | any
            });
        if matched {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::BadSignature,
                "the signature does not match any push secret of this domain",
            ))
        }
    }

    async fn subscribe(
        &self,
        request: Subscribe,
        source: Option<&str>,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Reply, Refusal> {
        let domain_name = request.email.domain();
        let disabled = |detail: &str| Refusal::new(ErrorCode::IntegrationDisabled, detail);
        if !self.store.server_settings().await?.push_enabled {
            return Err(disabled("push integration is turned off on this server"));
        }
        match self.store.domain(&domain_name).await? {
            Some(domain) if domain.push_enabled => {}
            _ => return Err(disabled("push integration is turned off for this domain")),
        }

        // The callback's name must not resolve to a refused address now (spec §2); it is
        // checked again when each notice is sent.
        if let Ok(url) = url::Url::parse(&request.callback)
            && let Some(host) = url.host()
            && check_host(self.resolver.as_ref(), &host, self.callback_policy())
                .await
                .is_err()
        {
            return Err(Refusal::invalid(
                "field `callback` names a host that resolves to a non-public address",
            ));
        }
        let account = check_credentials(
            self.store.as_ref(),
            Surface::Subscribe,
            &request.email,
            &request.password,
            source,
            now,
        )
        .await
        .map_err(credential_refusal)?;
        if !account.enabled {
            return Err(disabled("this account is disabled"));
        }
        let imap_alive = self
            .store
            .latest_heartbeat("imap")
            .await?
            .is_some_and(|at| now - at <= Duration::seconds(IMAP_LIVENESS_SECS));
        if !imap_alive {
            return Err(Refusal::new(
                ErrorCode::ImapUnavailable,
                "no IMAP listener is running: push mail needs IMAP",
            ));
        }

        let link = Link {
            address: request.email.clone(),
            subscription_id: format!("sub_{}", uuid::Uuid::new_v4().simple()),
            registration: request.registration,
            generation: request.generation,
            callback: request.callback,
            device: request.device,
            state: LinkState::Linked,
            activation: ActivationState::Pending,
            linked_at: now,
            unlinked_at: None,
        };
        let job = ActivationJob {
            subscription_id: link.subscription_id.clone(),
            address: link.address.clone(),
            device: link.device.clone(),
            linked_at: now,
            attempts: 0,
            not_before: now,
        };
        match self
            .store
            .insert_link(&link, &job, &account, signed_at)
            .await?
        {
            LinkInsert::Inserted => {
                info!(address = %link.address, subscription = %link.subscription_id, generation = link.generation, "subscribed");
                let activation = match self.deliver_activation(&link.subscription_id, now).await? {
                    Delivery::Sent => ActivationState::Sent,
                    _ => ActivationState::Pending,
                };
                Ok(Reply::ok(protocol::subscribed_body(
                    &link.subscription_id,
                    activation,
                )))
            }
            LinkInsert::Conflict(current) => self.answer_conflict(&link, current, now).await,
            // Deleted, disabled or given a new password while its password was being checked:
            // answered as that account is now.
            LinkInsert::AccountChanged => Err(match self.store.account(&link.address).await? {
                Some(account) if !account.enabled => disabled("this account is disabled"),
                _ => credential_refusal(CredentialError::BadCredentials),
            }),
        }
    }

    /// A SUBSCRIBE that did not become current: an exact replay, or a stale one.
    async fn answer_conflict(
        &self,
        wanted: &Link,
        current: Link,
        now: DateTime<Utc>,
    ) -> Result<Reply, Refusal> {
        let replay = current.is_linked()
            && current.registration == wanted.registration
            && current.generation == wanted.generation;
        if replay {
            let mut activation = current.activation;
            if activation == ActivationState::Pending
                && self
                    .deliver_activation(&current.subscription_id, now)
                    .await?
                    == Delivery::Sent
            {
                activation = ActivationState::Sent;
            }
            return Ok(Reply::ok(protocol::subscribed_body(
                &current.subscription_id,
                activation,
            )));
        }
        let detail = if current.generation > wanted.generation {
            format!(
                "generation {} is older than the current generation {}",
                wanted.generation, current.generation
            )
        } else if current.is_linked() {
            format!(
                "generation {} is already held by another registration, recorded first",
                current.generation
            )
        } else {
            format!(
                "generation {} was unlinked; a new SUBSCRIBE needs a higher generation",
                current.generation
            )
        };
        Err(Refusal::new(ErrorCode::StaleGeneration, detail))
    }

    async fn unsubscribe(
        &self,
        request: Unsubscribe,
        now: DateTime<Utc>,
    ) -> Result<Reply, Refusal> {
        let outcome = self
            .store
            .unlink(
                &request.email,
                &request.registration,
                request.generation,
                now,
            )
            .await?;
        let status = match outcome {
            Unlink::Unlinked(link) => {
                info!(address = %link.address, subscription = %link.subscription_id, "unsubscribed");
                "unsubscribed"
            }
            Unlink::NotLinked => "not_subscribed",
            Unlink::Newer(_) => "ignored_stale",
        };
        Ok(Reply::ok(protocol::status_body(status)))
    }

    /// Tries to send one subscription's activation mail, if it is due and nobody else is on it.
    pub async fn deliver_activation(
        &self,
        subscription_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivery, StoreError> {
        let lease = now + Duration::seconds(ACTIVATION_LEASE_SECS);
        let Some(job) = self
            .store
            .claim_activation(subscription_id, now, lease)
            .await?
        else {
            return Ok(Delivery::NotDue);
        };
        let current = self.store.link(&job.address).await?;
        if !current.is_some_and(|link| link.is_current(&job.subscription_id)) {
            self.store.discard_activation(&job.subscription_id).await?;
            return Ok(Delivery::Discarded);
        }
        let mail = ActivationMail {
            to: job.address.clone(),
            device: job.device.clone(),
            linked_at: job.linked_at,
            subscription_id: job.subscription_id.clone(),
        };
        match self.mailer.send_activation(&mail).await {
            Ok(()) => {
                self.store.complete_activation(&job).await?;
                info!(address = %job.address, subscription = %job.subscription_id, "activation mail sent");
                Ok(Delivery::Sent)
            }
            Err(error) => {
                let retry_at = now + activation_backoff(job.attempts);
                warn!(%error, address = %job.address, subscription = %job.subscription_id, %retry_at, "activation mail deferred");
                self.store
                    .defer_activation(&job.subscription_id, retry_at)
                    .await?;
                Ok(Delivery::Deferred)
            }
        }
    }

    /// Sends the activation mails that are due: run periodically (the local server does so
    /// every 30 s; on AWS a scheduled invocation does).
    pub async fn deliver_due_activations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for job in self.store.due_activations(now, SWEEP_BATCH).await? {
            match self.deliver_activation(&job.subscription_id, now).await? {
                Delivery::Sent => report.sent += 1,
                Delivery::Deferred => report.deferred += 1,
                Delivery::Discarded => report.discarded += 1,
                Delivery::NotDue => {}
            }
        }
        Ok(report)
    }
}

/// Runs [`PushService::deliver_due_activations`] every `every`, forever: the local processes'
/// stand-in for the scheduled sweeper function.
pub async fn sweep_activations_every(service: Arc<PushService>, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match service
            .deliver_due_activations(pushmail_core::types::now())
            .await
        {
            Ok(report) if report != SweepReport::default() => info!(?report, "activation sweep"),
            Ok(_) => {}
            Err(error) => error!(%error, "activation sweep failed"),
        }
    }
}

fn check_content_type(content_type: Option<&str>) -> Result<(), Refusal> {
    let media_type = content_type
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match media_type {
        Some(t) if t.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(Refusal::new(
            ErrorCode::UnsupportedMediaType,
            "the body must be sent as Content-Type: application/json",
        )),
    }
}

fn activation_backoff(failed_attempts: u32) -> Duration {
    let secs = ACTIVATION_BACKOFF_FIRST_SECS.saturating_mul(1_i64 << failed_attempts.min(20));
    Duration::seconds(secs.min(ACTIVATION_BACKOFF_MAX_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_json() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        for bad in [
            None,
            Some("text/plain"),
            Some("application/jsonx"),
            Some(""),
        ] {
            assert_eq!(
                check_content_type(bad).unwrap_err().code,
                ErrorCode::UnsupportedMediaType
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(activation_backoff(0), Duration::seconds(30));
        assert_eq!(activation_backoff(1), Duration::seconds(60));
        assert_eq!(activation_backoff(40), Duration::seconds(3600));
    }
}
