//! Submitted mail for other domains: signed with the sender's domain's DKIM key, queued durably
//! (`RelayStore`), and handed to the relay by a worker that retries with growing waits and, when
//! it finally fails, puts a bounce into the sender's INBOX.
//!
//! A worker crash between a bounce and the queue's update repeats the attempt, so a bounce can
//! come twice; it is never lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pushmail_core::types::Address;
use pushmail_store::{RelayJob, Store, StoreError};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::dkim;
use crate::dsn::{Failure, bounce_into_inbox};
use crate::reply::{self, Enhanced, Reply};
use crate::transport::{Transport, Verdict};

/// How long the relay is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayPolicy {
    /// The wait after the first failure; each further one doubles it...
    pub first_retry: Duration,
    /// ...up to this.
    pub max_retry: Duration,
    /// A message still not relayed this long after it arrived is bounced (RFC 5321 §4.5.4.1
    /// suggests 4–5 days).
    pub give_up_after: Duration,
    /// How often the queue is looked at besides when mail is queued.
    pub poll_every: Duration,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(60),
            max_retry: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(5 * 24 * 3600),
            poll_every: Duration::from_secs(30),
        }
    }
}

impl RelayPolicy {
    fn retry_at(&self, attempts: u32, now: DateTime<Utc>) -> DateTime<Utc> {
        let wait = self
            .first_retry
            .saturating_mul(2u32.saturating_pow(attempts.min(20)))
            .min(self.max_retry);
        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
    }

    fn given_up(&self, job: &RelayJob, now: DateTime<Utc>) -> bool {
        let age = (now - job.created_at).to_std().unwrap_or_default();
        age >= self.give_up_after
    }
}

/// What one pass over the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub relayed: usize,
    pub deferred: usize,
    pub bounced: usize,
}

/// The relay queue with its transport: shared by the submission sessions and the worker.
pub struct Outgoing {
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    policy: RelayPolicy,
    hostname: String,
    queued: Notify,
    /// Jobs queued here since the last pass, which tries them even before the store's due
    /// order shows them (on DynamoDB an index, read a moment behind its writes); at most
    /// [`FRESH`], past which the order alone brings them.
    fresh: std::sync::Mutex<Vec<String>>,
}

const FRESH: usize = 1024;

/// A worker holds a job this long per attempt; the transport's own timeouts are shorter.
const LEASE: chrono::Duration = chrono::Duration::minutes(15);
const BATCH: usize = 32;

impl Outgoing {
    pub fn new(
        store: Arc<dyn Store>,
        transport: Arc<dyn Transport>,
        policy: RelayPolicy,
        hostname: String,
    ) -> Self {
        Self {
            store,
            transport,
            policy,
            hostname,
            queued: Notify::new(),
            fresh: std::sync::Mutex::default(),
        }
    }

    /// The message with the sender's domain's DKIM signature on top (unchanged if the domain
    /// has no key). `Err` is the SMTP answer when a configured key cannot be used: unsigned
    /// mail from a signing domain would fail DMARC, so it waits instead.
    pub async fn sign(&self, sender: &Address, message: Vec<u8>) -> Result<Vec<u8>, Reply> {
        let domain = match self.store.domain(&sender.domain()).await {
            Ok(Some(domain)) => domain,
            Ok(None) => return Ok(message),
            Err(error) => {
                warn!(%error, "domain not read for DKIM");
                return Err(reply::TRY_LATER);
            }
        };
        let body = message;
        let signed = tokio::task::spawn_blocking(move || {
            dkim::signature_for(&domain, &body).map(|header| (header, body))
        })
        .await;
        match signed {
            Ok(Ok((Some(header), body))) => {
                let mut signed = header.into_bytes();
                signed.extend_from_slice(&body);
                Ok(signed)
            }
            Ok(Ok((None, body))) => Ok(body),
            Ok(Err(error)) => {
                warn!(%error, "message not signed");
                let why = "The domain's DKIM key is unavailable; try again later";
                Err(Reply::new(451, Enhanced(4, 7, 0), why))
            }
            Err(_) => Err(reply::TRY_LATER),
        }
    }

    /// Queues a message for `recipients`, durably, and wakes the worker.
    pub async fn enqueue(
        &self,
        id: &str,
        sender: &Address,
        recipients: &[Address],
        raw: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let job = RelayJob {
            id: id.to_owned(),
            sender: sender.clone(),
            recipients: recipients.to_vec(),
            created_at: at,
            not_before: at,
            attempts: 0,
            last_error: None,
        };
        self.store.enqueue_relay(&job, raw).await?;
        {
            let mut fresh = self.fresh();
            if fresh.len() < FRESH {
                fresh.push(job.id);
            }
        }
        self.queued.notify_one();
        Ok(())
    }

    /// Works the queue until `shutdown`: at once when mail is queued, else every poll period.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.work(Utc::now()).await {
                warn!(%error, "relay queue pass failed");
            }
            tokio::select! {
                () = self.queued.notified() => {}
                () = tokio::time::sleep(self.policy.poll_every) => {}
                () = &mut shutdown => return,
            }
        }
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A list of ids: still whole if a holder panicked.
        self.fresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One pass: the jobs queued here since the last, then every due job; one attempt each.
    pub async fn work(&self, now: DateTime<Utc>) -> Result<RelayReport, StoreError> {
        let mut report = RelayReport::default();
        let fresh = std::mem::take(&mut *self.fresh());
        for id in &fresh {
            if let Some(job) = self.store.claim_relay(id, now, now + LEASE).await? {
                self.attempt(job, now, &mut report).await?;
            }
        }
        let due = self.store.due_relays(now, BATCH).await?;
        let oldest = due
            .iter()
            .map(|job| (now - job.created_at).num_seconds().max(0))
            .max()
            .unwrap_or(0);
        metrics::gauge!(pushmail_core::metric_names::RELAYS_DUE).set(due.len() as f64);
        metrics::gauge!(pushmail_core::metric_names::RELAY_OLDEST).set(oldest as f64);
        for due in due {
            let Some(job) = self.store.claim_relay(&due.id, now, now + LEASE).await? else {
                continue; // another worker has it
            };
            self.attempt(job, now, &mut report).await?;
        }
        Ok(report)
    }

    async fn attempt(
        &self,
        job: RelayJob,
        now: DateTime<Utc>,
        report: &mut RelayReport,
    ) -> Result<(), StoreError> {
        let Some(raw) = self.store.relay_body(&job.id).await? else {
            return self.store.finish_relay(&job.id).await;
        };
        let verdicts = self
            .transport
            .send(&job.sender, &job.recipients, &raw)
            .await;
        let given_up = self.policy.given_up(&job, now);
        let (mut failures, mut remaining, mut last_error) = (Vec::new(), Vec::new(), None);
        for (recipient, verdict) in job.recipients.iter().zip(verdicts) {
            match verdict {
                Verdict::Accepted => {
                    info!(id = job.id, %recipient, "relayed");
                    report.relayed += 1;
                }
                Verdict::Permanent(why) => failures.push(Failure {
                    recipient: recipient.clone(),
                    diagnostic: why,
                    permanent: true,
                }),
                Verdict::Temporary(why) if given_up => failures.push(Failure {
                    recipient: recipient.clone(),
                    diagnostic: why,
                    permanent: false,
                }),
                Verdict::Temporary(why) => {
                    remaining.push(recipient.clone());
                    last_error = Some(why);
                }
            }
        }
        if !failures.is_empty() {
            self.bounce(&job, &raw, &failures).await?;
            report.bounced += failures.len();
        }
        match last_error {
            Some(error) if !remaining.is_empty() => {
                let retry_at = self.policy.retry_at(job.attempts, now);
                warn!(id = job.id, %retry_at, error, "relay deferred");
                report.deferred += remaining.len();
                self.store
                    .defer_relay(&job.id, &remaining, retry_at, &error)
                    .await
            }
            _ => self.store.finish_relay(&job.id).await,
        }
    }

    /// Puts the bounce into the sender's INBOX (`dsn::bounce_into_inbox`), for the sender the
    /// job was queued for.
    async fn bounce(
        &self,
        job: &RelayJob,
        raw: &[u8],
        failures: &[Failure],
    ) -> Result<(), StoreError> {
        let delivery = bounce_into_inbox(
            self.store.as_ref(),
            &self.hostname,
            &job.sender,
            raw,
            job.created_at,
            failures,
            job.created_at,
        )
        .await?;
        warn!(id = job.id, sender = %job.sender, failed = failures.len(), ?delivery, "bounced");
        Ok(())
    }
}
