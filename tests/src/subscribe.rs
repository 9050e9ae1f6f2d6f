//! The Subscribe URL's test helpers.

use pushmail_core::types::Address;

use crate::{Answer, Harness};

pub fn assert_subscribed(answer: &Answer, activation: &str) -> String {
    assert_eq!(answer.status, 200, "answer: {:?}", answer.body);
    assert_eq!(answer.body["status"], "subscribed");
    assert_eq!(
        answer.body["activation"], activation,
        "answer: {:?}",
        answer.body
    );
    answer.body["subscription"]
        .as_str()
        .expect("subscription id")
        .to_owned()
}

/// A refused request left nothing behind: no link, no mail, and a later valid SUBSCRIBE is new.
pub async fn assert_no_trace(h: &Harness, address: &Address) {
    assert_eq!(
        h.store.link(address).await.unwrap(),
        None,
        "a refused request left a link"
    );
    assert!(
        h.activation_mails(address).await.is_empty(),
        "a refused request sent mail"
    );
    let answer = h.post(&h.subscribe_body(address, "r-after", 1)).await;
    assert_subscribed(&answer, "sent");
    assert_eq!(h.activation_mails(address).await.len(), 1);
}
