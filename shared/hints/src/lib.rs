//! Change hints between listener processes that share one table, over AWS's own pub/sub: each
//! process publishes the accounts it changed to one SNS topic and reads the others' from an
//! SQS queue of its own, subscribed to the topic (raw delivery; a filter policy keeps a
//! process's own hints out of its queue). What is heard wakes that process's IMAP sessions
//! through [`ChangeHints::heard`]; they then read the change log, so a lost hint only delays.
//!
//! Queues are made at start and removed at a clean stop. A process that dies leaves its queue:
//! every live process tags its own queue every few minutes and removes queues whose tag has gone
//! stale, so none outlives its process by more than [`STALE_AFTER`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName};
use pushmail_core::hints::ChangeHints;
use pushmail_core::types::Address;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Queue names start with this, then the process's instance id.
pub const QUEUE_PREFIX: &str = "pushmail-hints-";
/// How often a process says its queue is alive.
const ALIVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// A queue whose process has not said so for this long is removed by the others.
pub const STALE_AFTER: Duration = Duration::from_secs(20 * 60);
/// A hint older than this is worth nothing (sessions have polled since): SQS drops it.
const RETENTION_SECS: &str = "60";
const ALIVE_TAG: &str = "pushmail-alive";

#[derive(Debug, thiserror::Error)]
#[error("change hints: {0}")]
pub struct HintError(String);

fn aws<E: std::error::Error + 'static>(error: E) -> HintError {
    HintError(aws_sdk_sqs::error::DisplayErrorContext(error).to_string())
}

/// One process's place on the topic.
#[derive(Debug)]
pub struct SnsSqsHints {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    topic_arn: String,
    instance: String,
    queue_url: String,
    subscription_arn: String,
    /// How long one ReceiveMessage waits for a hint (SQS long polling, at most 20 s).
    wait_secs: i32,
}

impl SnsSqsHints {
    /// Makes this process's queue and subscribes it to the topic.
    pub async fn join(
        sns: aws_sdk_sns::Client,
        sqs: aws_sdk_sqs::Client,
        topic_arn: &str,
        wait: Duration,
    ) -> Result<Self, HintError> {
        let instance = uuid::Uuid::new_v4().simple().to_string();
        let wait_secs = wait.as_secs().clamp(1, 20) as i32;
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{QUEUE_PREFIX}{instance}"))
            .attributes(QueueAttributeName::MessageRetentionPeriod, RETENTION_SECS)
            .attributes(
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                wait_secs.to_string(),
            )
            .tags(ALIVE_TAG, now_secs().to_string())
            .send()
            .await
            .map_err(aws)?
            .queue_url
            .ok_or_else(|| HintError("CreateQueue returned no URL".into()))?;
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws)?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| HintError("the queue has no ARN".into()))?;
        // Only the topic may send to the queue.
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }],
        });
        sqs.set_queue_attributes()
            .queue_url(&queue_url)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(aws)?;
        let filter = serde_json::json!({"origin": [{"anything-but": [instance]}]});
        let subscription_arn = sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicy", filter.to_string())
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(aws)?
            .subscription_arn
            .ok_or_else(|| HintError("Subscribe returned no ARN".into()))?;
        info!(%instance, %queue_url, "change hints: joined the topic");
        Ok(Self {
            sns,
            sqs,
            topic_arn: topic_arn.to_owned(),
            instance,
            queue_url,
            subscription_arn,
            wait_secs,
        })
    }

    /// Publishes this process's hints and hands the others' to `hints`, until the task is
    /// aborted (then [`leave`](Self::leave)).
    pub async fn run(self: Arc<Self>, hints: ChangeHints, outbound: mpsc::Receiver<Address>) {
        tokio::join!(
            self.publish(outbound),
            self.listen(&hints),
            self.keep_alive()
        );
    }

    async fn publish(&self, mut outbound: mpsc::Receiver<Address>) {
        while let Some(first) = outbound.recv().await {
            // What queued up meanwhile goes in the same request (SNS takes ten at a time),
            // each account once.
            let mut accounts = BTreeSet::from([first]);
            while accounts.len() < 10 {
                match outbound.try_recv() {
                    Ok(account) => {
                        accounts.insert(account);
                    }
                    Err(_) => break,
                }
            }
            let entries: Vec<PublishBatchRequestEntry> = accounts
                .iter()
                .enumerate()
                .filter_map(|(i, account)| {
                    let origin = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(&self.instance)
                        .build()
                        .ok()?;
                    PublishBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message(account.as_str())
                        .message_attributes("origin", origin)
                        .build()
                        .ok()
                })
                .collect();
            let sent = self
                .sns
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await;
            if let Err(error) = sent {
                warn!(error = %aws(error), "change hints: publish failed (others poll instead)");
            }
        }
    }

    async fn listen(&self, hints: &ChangeHints) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .wait_time_seconds(self.wait_secs)
                .max_number_of_messages(10)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    warn!(error = %aws(error), "change hints: receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut done = Vec::new();
            for (i, message) in messages.iter().enumerate() {
                if let Some(account) = message.body().and_then(|b| Address::parse(b).ok()) {
                    hints.heard(&account);
                }
                if let Some(handle) = message.receipt_handle()
                    && let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                {
                    done.push(entry);
                }
            }
            if !done.is_empty() {
                let deleted = self
                    .sqs
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(done))
                    .send()
                    .await;
                if let Err(error) = deleted {
                    // Undeleted hints come back once more: harmless.
                    warn!(error = %aws(error), "change hints: delete failed");
                }
            }
        }
    }

    /// Tags this queue as alive, and removes other processes' stale queues.
    async fn keep_alive(&self) {
        let mut ticks = tokio::time::interval(ALIVE_EVERY);
        loop {
            ticks.tick().await;
            let tagged = self
                .sqs
                .tag_queue()
                .queue_url(&self.queue_url)
                .tags(ALIVE_TAG, now_secs().to_string())
                .send()
                .await;
            if let Err(error) = tagged {
                warn!(error = %aws(error), "change hints: could not tag the queue");
            }
            if let Err(error) = self.reap().await {
                warn!(%error, "change hints: could not look for stale queues");
            }
        }
    }

    /// Removes queues (and their subscriptions) whose process stopped saying it is alive.
    pub async fn reap(&self) -> Result<usize, HintError> {
        let listed = self
            .sqs
            .list_queues()
            .queue_name_prefix(QUEUE_PREFIX)
            .send()
            .await
            .map_err(aws)?;
        let mut removed = 0;
        for url in listed.queue_urls.unwrap_or_default() {
            if url == self.queue_url {
                continue;
            }
            // Another process may be removing the same queue, or its owner leaving: a queue
            // gone meanwhile is not an error, only skipped.
            let tags = match self.sqs.list_queue_tags().queue_url(&url).send().await {
                Ok(output) => output.tags.unwrap_or_default(),
                Err(error) => {
                    info!(queue = %url, error = %aws(error), "change hints: queue gone meanwhile");
                    continue;
                }
            };
            let alive = tags.get(ALIVE_TAG).and_then(|t| t.parse::<u64>().ok());
            if alive.is_some_and(|at| now_secs().saturating_sub(at) < STALE_AFTER.as_secs()) {
                continue;
            }
            match self.remove_queue(&url).await {
                Ok(()) => removed += 1,
                Err(error) => info!(queue = %url, %error, "change hints: not removed"),
            }
        }
        Ok(removed)
    }

    async fn remove_queue(&self, url: &str) -> Result<(), HintError> {
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(aws)?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn));
        let subscriptions = self
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&self.topic_arn)
            .send()
            .await
            .map_err(aws)?
            .subscriptions
            .unwrap_or_default();
        for subscription in subscriptions {
            if subscription.endpoint.is_some()
                && subscription.endpoint == arn
                && let Some(subscription_arn) = subscription.subscription_arn
            {
                self.sns
                    .unsubscribe()
                    .subscription_arn(subscription_arn)
                    .send()
                    .await
                    .map_err(aws)?;
            }
        }
        self.sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .map_err(aws)?;
        info!(queue = %url, "change hints: removed a stale queue");
        Ok(())
    }

    /// Unsubscribes and removes this process's queue (a clean stop).
    pub async fn leave(&self) -> Result<(), HintError> {
        self.sns
            .unsubscribe()
            .subscription_arn(&self.subscription_arn)
            .send()
            .await
            .map_err(aws)?;
        self.sqs
            .delete_queue()
            .queue_url(&self.queue_url)
            .send()
            .await
            .map_err(aws)?;
        Ok(())
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}
