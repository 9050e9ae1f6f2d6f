//! Deleting a large mailbox on DynamoDB: the purge goes a page at a time (here more than one
//! page of the partition), each page's S3 bodies in batches before its items, so nothing of the
//! account is left in the table or the bucket; and a delete of the address that finds no account
//! finishes a purge cut short (before, the purge read every key first and deleted the bodies one
//! request each: a large mailbox ran out of its request's time and, starting again from its
//! first body, never finished, and a second delete found no account and did nothing).

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use pushmail_core::types::Address;
use pushmail_store::{AccountDelete, Store};
use pushmail_tests::fixtures::mailbox_with;
use pushmail_tests::{TestStore, s3_client, sdk_config};

/// Messages whose envelopes (a long subject) make the partition span more than one 1 MB page.
const MESSAGES: usize = 600;

async fn mailbox_of(test_store: &TestStore, address: &str) -> Address {
    let address = Address::parse(address).unwrap();
    let subject = "s".repeat(1900);
    mailbox_with(test_store.store.as_ref(), &address, MESSAGES, |n| {
        format!("Subject: {subject} {n}\r\n\r\nhi\r\n")
    })
    .await;
    address
}

/// The items of the account's partition left (but the UIDVALIDITY floor, kept on purpose), and
/// the bodies left under its prefix in the bucket.
async fn left_of(test_store: &TestStore, address: &Address) -> (usize, usize) {
    let sdk = sdk_config().await;
    let table = test_store.table.clone().unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let mut items = 0;
    let mut start = None;
    loop {
        let page = dynamo
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("ACCOUNT#{address}")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items += page
            .items()
            .iter()
            .filter(|item| item["sk"].as_s().unwrap() != "UIDVALIDITY")
            .count();
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let s3 = s3_client().await;
    let mut bodies = 0;
    let mut token = None;
    loop {
        let listed = s3
            .list_objects_v2()
            .bucket(test_store.bucket.clone().unwrap())
            .prefix(format!("mail/{address}/"))
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        bodies += listed.contents().len();
        token = listed.next_continuation_token;
        if token.is_none() {
            break;
        }
    }
    (items, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    no_aws_endpoint,
    ignore = "needs AWS_ENDPOINT_URL (moto: infra/local/stack.sh up)"
)]
async fn a_large_mailbox_is_purged_whole_and_a_second_delete_finishes_a_purge_cut_short() {
    let test_store = pushmail_tests::dynamo_store().await;
    let store: Arc<dyn Store> = test_store.store.clone();
    let alice = mailbox_of(&test_store, "alice@big.example").await;
    let (items, bodies) = left_of(&test_store, &alice).await;
    assert!(
        items > 2 * MESSAGES && bodies == MESSAGES,
        "{items} {bodies}"
    );
    assert!(matches!(
        store.delete_account(&alice).await.unwrap(),
        AccountDelete::Deleted { .. }
    ));
    assert_eq!(left_of(&test_store, &alice).await, (0, 0));

    // Cut short before it began: the account item gone, everything else still there.
    let bob = mailbox_of(&test_store, "bob@big.example").await;
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
        .delete_item()
        .table_name(test_store.table.clone().unwrap())
        .key("pk", AttributeValue::S(format!("ACCOUNT#{bob}")))
        .key("sk", AttributeValue::S("ACCOUNT".into()))
        .send()
        .await
        .unwrap();
    assert_ne!(left_of(&test_store, &bob).await, (0, 0));
    assert_eq!(
        store.delete_account(&bob).await.unwrap(),
        AccountDelete::NotFound
    );
    assert_eq!(left_of(&test_store, &bob).await, (0, 0));
}
