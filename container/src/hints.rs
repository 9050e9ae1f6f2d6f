//! Change hints for this process's IMAP sessions: in-process always, and across processes
//! over SNS and SQS when a topic is configured (`pushmail-hints`).

use std::sync::Arc;
use std::time::Duration;

use pushmail_core::hints::ChangeHints;
use pushmail_hints::SnsSqsHints;
use pushmail_runtime::aws::AwsContext;
use tracing::{info, warn};

/// Hints queued for the topic beyond this are dropped (others find them by polling).
const OUTBOUND_CAPACITY: usize = 4096;

/// The hints, and the bridge when there is one (to leave the topic at a clean stop).
pub struct Hints {
    pub hints: ChangeHints,
    bridge: Option<(Arc<SnsSqsHints>, tokio::task::JoinHandle<()>)>,
}

impl Hints {
    pub async fn start(topic_arn: Option<&str>, wait: Duration) -> anyhow::Result<Self> {
        let Some(topic_arn) = topic_arn else {
            return Ok(Self {
                hints: ChangeHints::new(),
                bridge: None,
            });
        };
        let aws = AwsContext::from_env().await;
        let joined = Arc::new(
            SnsSqsHints::join(
                aws_sdk_sns::Client::new(aws.sdk_config()),
                aws_sdk_sqs::Client::new(aws.sdk_config()),
                topic_arn,
                wait,
            )
            .await?,
        );
        let (hints, outbound) = ChangeHints::new().with_outbound(OUTBOUND_CAPACITY);
        let task = tokio::spawn(joined.clone().run(hints.clone(), outbound));
        info!(topic = %topic_arn, "change hints go through SNS and SQS");
        Ok(Self {
            hints,
            bridge: Some((joined, task)),
        })
    }

    /// Leaves the topic (its queue removed); a failure only leaves the queue for others to reap.
    pub async fn stop(self) {
        if let Some((joined, task)) = self.bridge {
            task.abort();
            if let Err(error) = joined.leave().await {
                warn!(%error, "change hints: could not leave the topic");
            }
        }
    }
}
