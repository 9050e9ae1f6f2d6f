//! The SES mailer against the SES endpoint (moto's in the test command): an unverified sender is
//! refused, a verified one is sent with the activation subject and body. The services' own
//! tests run on kept mail; this is the one place that talks to SES.

use pushmail_core::types::{Address, Device, now};
use pushmail_push::mailer::{ACTIVATION_SUBJECT, ActivationMail, Mailer};
use pushmail_runtime::aws::AwsContext;
use serde_json::Value;

#[tokio::test]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn ses_refuses_an_unverified_sender_and_sends_for_a_verified_one() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SES")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .expect("AWS_ENDPOINT_URL was set when this test was built");
    let sender_domain = format!("s{}.mail.test", uuid::Uuid::new_v4().simple());
    let mailer = AwsContext::from_env()
        .await
        .ses_mailer(format!("pushmail <push@{sender_domain}>"));
    let to = Address::parse(&format!("alice@{sender_domain}")).unwrap();
    let mail = ActivationMail {
        to: to.clone(),
        device: Some(Device {
            pin: Some("2A3B4C5D".into()),
            model: Some("Bold 9700".into()),
        }),
        linked_at: now(),
        subscription_id: "sub_ses_test".into(),
    };
    assert!(mailer.send_activation(&mail).await.is_err());

    aws_sdk_ses::Client::new(&pushmail_tests::sdk_config().await)
        .verify_domain_identity()
        .domain(&sender_domain)
        .send()
        .await
        .expect("verify SES identity");
    mailer.send_activation(&mail).await.expect("sent");

    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .expect("moto-api reachable")
        .json()
        .await
        .expect("moto-api json");
    let sent: Vec<&Value> = data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["destinations"]["ToAddresses"][0] == to.as_str())
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["subject"], ACTIVATION_SUBJECT);
    assert!(sent[0]["source"].as_str().unwrap().contains(&sender_domain));
    let body = sent[0]["body"].as_str().unwrap();
    assert!(
        body.contains(to.as_str()) && body.contains("sub_ses_test"),
        "{body}"
    );
}
