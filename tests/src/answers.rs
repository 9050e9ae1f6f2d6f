//! What the Subscribe URL and the admin API answered, as the tests read it.

use serde_json::Value;

use crate::openapi;

/// An answer from the Subscribe URL.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The answer has this status (its body shown if not).
pub fn assert_status(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "answer: {:?}", answer.body);
}

/// The answer is this error: status, machine-readable code and a human-readable detail.
pub fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_status(answer, status);
    assert_eq!(answer.body["error"], code, "answer: {:?}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "no detail: {:?}",
        answer.body
    );
}

pub(crate) async fn into_answer(response: reqwest::Response) -> Answer {
    answer_of(response).await.0
}

/// Sends an admin API request and checks its answer against the OpenAPI description.
pub(crate) async fn into_admin_answer(
    method: &str,
    path: &str,
    request: reqwest::RequestBuilder,
) -> Answer {
    let response = request.send().await.expect("request reaches the server");
    let (answer, text) = answer_of(response).await;
    openapi::check_answer(method, path, answer.status, &text);
    answer
}

pub(crate) async fn answer_of(response: reqwest::Response) -> (Answer, String) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    (
        Answer {
            status,
            body,
            retry_after,
            headers,
        },
        text,
    )
}
