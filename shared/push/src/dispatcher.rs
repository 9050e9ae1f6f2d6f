//! The new-mail notice dispatcher (spec §4): sends each recorded notice to the current
//! subscription's callback, signed with the domain's newest secret, and retries with backoff
//! and jitter for 24 h.
//!
//! One account's notices go out one at a time and in order; each account is worked by a task
//! of its own, so a dead or slow callback holds up only its own account (never another's, and
//! never the next pass), within a bound on how many accounts are worked at once. A pass starts
//! as soon as a delivery records a notice (`waker`), else every poll period.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pushmail_core::hints::NoticeWaker;
use pushmail_core::notice::{Notice, RetryPolicy};
use pushmail_core::types::Address;
use pushmail_store::{NoticeDrop, Store, StoreError, Unlink};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::notifier::{NoticeOutcome, Notifier};

/// An account's notices read at once.
const NOTICE_PAGE: usize = 32;

/// How long a dispatcher holds a notice it is sending: longer than an attempt can take.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// How the dispatcher works.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    pub retry: RetryPolicy,
    /// Accounts whose notices are being sent at once.
    pub concurrency: usize,
    /// How often the store is looked at besides the wake-ups.
    pub poll_every: Duration,
    /// Accounts read per pass, and notices one account's task sends before the next pass.
    pub batch: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            concurrency: 64,
            poll_every: Duration::from_secs(1),
            batch: 2000,
        }
    }
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    settings: DispatchSettings,
    wake: Arc<NoticeWaker>,
    slots: Arc<Semaphore>,
    /// Accounts a task is working now: a pass leaves them to it.
    busy: Arc<Mutex<HashSet<Address>>>,
}

/// What happened to one notice.
enum Sent {
    Delivered,
    /// Not sent now; the account's later notices wait behind it.
    Deferred,
    /// Dropped, or the subscription ended: go on with the next.
    Done,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        notifier: Arc<dyn Notifier>,
        settings: DispatchSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            notifier,
            settings,
            wake: Arc::default(),
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            busy: Arc::default(),
        })
    }

    /// Notify it when a delivery recorded a notice: the next pass starts at once.
    pub fn waker(&self) -> Arc<NoticeWaker> {
        self.wake.clone()
    }

    /// Passes until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = self.clone().pass(Utc::now()).await {
                warn!(%error, "notice pass failed");
            }
            tokio::select! {
                () = self.wake.woken() => {}
                () = tokio::time::sleep(self.settings.poll_every) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Starts a task for every account whose oldest pending notice is due (and every account a
    /// delivery here has just named) that no task is working; returns without waiting for them.
    pub async fn pass(self: Arc<Self>, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let fresh = self.wake.take_fresh();
        let due = self
            .store
            .due_notice_accounts(now, self.settings.batch)
            .await?;
        let oldest = self
            .store
            .oldest_waiting_notice()
            .await?
            .map_or(0, |arrived| (now - arrived).num_seconds().max(0));
        metrics::gauge!(pushmail_core::metric_names::NOTICE_ACCOUNTS_DUE).set(due.len() as f64);
        metrics::gauge!(pushmail_core::metric_names::NOTICE_OLDEST).set(oldest as f64);
        let mut started = 0;
        let mut seen = HashSet::new();
        for account in fresh.into_iter().chain(due) {
            if !seen.insert(account.clone()) {
                continue;
            }
            // Every slot taken (that many callbacks slow at once): the rest wait for the next
            // pass rather than hold this one up.
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                return Ok(started);
            };
            if !self.busy.lock().expect("busy lock").insert(account.clone()) {
                continue;
            }
            let dispatcher = self.clone();
            tokio::spawn(async move {
                dispatcher.work_account(&account).await;
                dispatcher.busy.lock().expect("busy lock").remove(&account);
                drop(slot);
            });
            started += 1;
        }
        Ok(started)
    }

    /// Waits until no account is being worked (tests and the Lambda sweep).
    pub async fn settle(&self) {
        while !self.busy.lock().expect("busy lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends an account's notices in order, read afresh, up to the first that must wait; then
    /// the account's place among the due ones is brought up to date.
    async fn work_account(&self, account: &Address) {
        self.send_pending(account).await;
        if let Err(error) = self.store.settle_notice_queue(account).await {
            // Its place is never later than its oldest notice is due: a later pass settles it.
            warn!(%error, %account, "notice queue not settled");
        }
    }

    /// Up to a batch of the account's notices, read a page at a time: an account whose oldest
    /// must wait (its callback down, a backlog behind it) costs one page, not the batch.
    async fn send_pending(&self, account: &Address) {
        let mut left = self.settings.batch;
        while left > 0 {
            let page = left.min(NOTICE_PAGE);
            let notices = match self.store.account_pending_notices(account, page).await {
                Ok(notices) => notices,
                Err(error) => {
                    warn!(%error, %account, "pending notices not read");
                    return;
                }
            };
            let more = notices.len() == page;
            for notice in notices {
                match self.send(&notice).await {
                    Ok(Sent::Delivered | Sent::Done) => left -= 1,
                    Ok(Sent::Deferred) => return,
                    Err(error) => {
                        warn!(%error, id = notice.id, "notice left for the next pass");
                        return;
                    }
                }
            }
            if !more {
                return;
            }
        }
    }

    async fn send(&self, notice: &Notice) -> Result<Sent, StoreError> {
        let now = Utc::now();
        // Held while it is sent, so another dispatcher (a second process, the sweeper) neither
        // sends it too nor sends the account's next one ahead of it.
        if notice.not_before > now || !self.store.lease_notice(notice, now, now + LEASE).await? {
            return Ok(Sent::Deferred);
        }
        let link = self.store.link(&notice.email).await?;
        let Some(link) = link.filter(|link| link.is_current(&notice.subscription_id)) else {
            // Superseded or unlinked: the old callback is never told.
            self.store.drop_notice(notice, NoticeDrop::Stale).await?;
            counted("stale");
            return Ok(Sent::Done);
        };
        if self.settings.retry.expired(notice.received, now) {
            warn!(id = notice.id, email = %notice.email, "notice expired undelivered");
            self.store.drop_notice(notice, NoticeDrop::Expired).await?;
            counted("expired");
            return Ok(Sent::Done);
        }
        let secrets = self.store.push_secrets(&notice.email.domain()).await?;
        let Some(secret) = secrets.first() else {
            return self
                .failed(notice, "no push secret to sign with", now)
                .await;
        };
        let outcome = self
            .notifier
            .notify(&link.callback, secret.value.as_bytes(), &notice.body())
            .await;
        match outcome {
            outcome if outcome.delivered() => {
                info!(id = notice.id, email = %notice.email, "notice delivered");
                let delivered_at = Utc::now();
                self.store.notice_delivered(notice, delivered_at).await?;
                counted("delivered");
                let latency = (delivered_at - notice.received).num_milliseconds().max(0);
                metrics::histogram!(pushmail_core::metric_names::NOTICE_LATENCY)
                    .record(latency as f64 / 1000.0);
                Ok(Sent::Delivered)
            }
            NoticeOutcome::Answered(status @ (404 | 410)) => {
                // Spec §4: the subscription ends as an UNSUBSCRIBE of its generation would.
                let ended = self
                    .store
                    .unlink(&link.address, &link.registration, link.generation, now)
                    .await?;
                info!(email = %notice.email, status, ?ended, "callback gone: subscription ended");
                if !matches!(ended, Unlink::Unlinked(_) | Unlink::NotLinked) {
                    warn!(email = %notice.email, "callback gone, but a newer link stands");
                }
                self.store.drop_notice(notice, NoticeDrop::Stale).await?;
                counted("ended");
                Ok(Sent::Done)
            }
            NoticeOutcome::Answered(status) => {
                self.failed(notice, &format!("HTTP {status}"), now).await
            }
            NoticeOutcome::Unreachable(why) => self.failed(notice, &why, now).await,
        }
    }

    async fn failed(
        &self,
        notice: &Notice,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Sent, StoreError> {
        let jitter = rand::random::<f64>();
        let retry_at = self.settings.retry.retry_at(notice.attempts, now, jitter);
        warn!(id = notice.id, email = %notice.email, error, %retry_at, "notice deferred");
        self.store
            .notice_failed(notice, retry_at, error, now)
            .await?;
        counted("deferred");
        Ok(Sent::Deferred)
    }
}

/// One notice's outcome, counted.
fn counted(outcome: &'static str) {
    metrics::counter!(pushmail_core::metric_names::NOTICES, "outcome" => outcome).increment(1);
}
