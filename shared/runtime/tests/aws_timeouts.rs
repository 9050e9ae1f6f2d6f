//! An AWS endpoint that accepts connections and never answers fails a store call within the
//! configured bounds instead of holding it for ever. Its own test binary: it sets the process's
//! AWS environment before anything else runs.

use std::time::{Duration, Instant};

use pushmail_core::types::DomainName;
use pushmail_runtime::aws::AwsContext;
use pushmail_store::prelude::*;

#[test]
fn a_silent_endpoint_fails_the_call_within_its_bounds() {
    // A listener that takes every connection and says nothing.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in silent.incoming() {
            held.push(connection);
        }
    });
    // SAFETY: set before the runtime or any other thread that reads the environment starts;
    // this binary has this one test.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let aws = AwsContext::from_env()
            .await
            .with_timeouts(Duration::from_millis(300), Duration::from_secs(2));
        let store = aws.dynamo_store("pushmail-silent");
        let started = Instant::now();
        let domain = DomainName::parse("example.com").unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(20), store.domain(&domain))
            .await
            .expect("the call ends by itself, not by this test's guard");
        assert!(answer.is_err(), "a silent endpoint gave {answer:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    });
}
