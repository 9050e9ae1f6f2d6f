//! Change hints between processes over SNS and SQS (moto in the test command): what one
//! process changes wakes the other's sessions, never its own twice; a clean stop removes the
//! queue; a queue left by a process that died is removed by the live ones.

use std::sync::Arc;
use std::time::Duration;

use pushmail_core::hints::ChangeHints;
use pushmail_core::types::Address;
use pushmail_hints::{QUEUE_PREFIX, SnsSqsHints};
use pushmail_runtime::aws::AwsContext;

struct Bridge {
    hints: ChangeHints,
    joined: Arc<SnsSqsHints>,
    task: tokio::task::JoinHandle<()>,
}

async fn bridge(aws: &AwsContext, topic: &str) -> Bridge {
    let sns = aws_sdk_sns::Client::new(aws.sdk_config());
    let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
    let joined = Arc::new(
        SnsSqsHints::join(sns, sqs, topic, Duration::from_secs(20))
            .await
            .unwrap(),
    );
    let (hints, outbound) = ChangeHints::new().with_outbound(64);
    let task = tokio::spawn(joined.clone().run(hints.clone(), outbound));
    Bridge {
        hints,
        joined,
        task,
    }
}

async fn topic(aws: &AwsContext) -> String {
    aws_sdk_sns::Client::new(aws.sdk_config())
        .create_topic()
        .name(format!("pushmail-test-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn a_change_in_one_process_wakes_the_other_and_not_itself() {
    let aws = AwsContext::from_env().await;
    let topic = topic(&aws).await;
    let (a, b) = (bridge(&aws, &topic).await, bridge(&aws, &topic).await);
    let mut a_woken = a.hints.subscribe();
    let mut b_woken = b.hints.subscribe();
    let alice = Address::parse("alice@example.com").unwrap();
    // Several changes in a row go out as one batch, each account once.
    for _ in 0..5 {
        a.hints.changed(&alice);
    }
    let heard = tokio::time::timeout(Duration::from_secs(10), b_woken.recv())
        .await
        .expect("B hears A's change")
        .unwrap();
    assert_eq!(heard, alice);
    // A saw its own change once, locally, and nothing came back from the topic.
    assert_eq!(a_woken.recv().await.unwrap(), alice);
    for _ in 0..4 {
        assert_eq!(a_woken.recv().await.unwrap(), alice);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        a_woken.try_recv().is_err(),
        "A's own hints do not come back"
    );

    let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
    b.task.abort();
    b.joined.leave().await.unwrap();
    let left = sqs
        .get_queue_url()
        .queue_name(queue_name(b.joined.queue_url()))
        .send()
        .await;
    assert!(left.is_err(), "B's queue is gone after a clean stop");
    a.task.abort();
    a.joined.leave().await.unwrap();
}

fn queue_name(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn a_queue_left_by_a_dead_process_is_removed_by_a_live_one() {
    let aws = AwsContext::from_env().await;
    let topic = topic(&aws).await;
    let sqs = aws_sdk_sqs::Client::new(aws.sdk_config());
    // A process that died long ago: its queue says it was alive an hour back.
    let dead = sqs
        .create_queue()
        .queue_name(format!(
            "{QUEUE_PREFIX}dead{}",
            uuid::Uuid::new_v4().simple()
        ))
        .tags(
            "pushmail-alive",
            (chrono::Utc::now().timestamp() - 3600).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let live = bridge(&aws, &topic).await;
    let other = bridge(&aws, &topic).await;
    // Each bridge looks when it starts (and every few minutes); an explicit look finds the
    // dead queue gone already, or removes it.
    live.joined.reap().await.unwrap();
    let gone = sqs
        .get_queue_url()
        .queue_name(queue_name(&dead))
        .send()
        .await;
    assert!(gone.is_err(), "the dead process's queue is removed");
    let kept = sqs
        .get_queue_url()
        .queue_name(queue_name(other.joined.queue_url()))
        .send()
        .await;
    assert!(kept.is_ok(), "a live process's queue stays");
    for bridge in [live, other] {
        bridge.task.abort();
        bridge.joined.leave().await.unwrap();
    }
}
