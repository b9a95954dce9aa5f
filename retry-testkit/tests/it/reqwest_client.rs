//! The server as a real HTTP client (reqwest) sees it.

use std::time::Duration;

use llm_retry_testkit::{ChaosServer, Fault, RefusedPort, RetryAfterHeader};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn chat_request(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "Say hi"}]})
}

async fn post_chat(server: &ChaosServer, stream: bool) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/chat/completions", server.openai_base()))
        .bearer_auth("sk-test-key-do-not-record")
        .header("x-llm-retry-attempt", "1")
        .json(&chat_request(stream))
        .send()
        .await
}

#[tokio::test]
async fn json_reply_and_errors() {
    let server = ChaosServer::builder().reply("Hi there").start().await;
    server.script([Fault::RateLimited { retry_after: RetryAfterHeader::Millis(20) }, Fault::Status(529)]);

    let resp = post_chat(&server, false).await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after-ms"], "20");
    let resp = post_chat(&server, false).await.unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["type"], "overloaded_error");
    let resp = post_chat(&server, false).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hi there");

    assert_eq!(server.request_count(), 3);
    assert!(server.requests().iter().all(|r| r.had_authorization && r.attempt == Some(1)));
    assert!(!format!("{:?}", server.requests()).contains("sk-test-key"));
}

#[tokio::test]
async fn streamed_reply_arrives_in_chunks() {
    let server = ChaosServer::builder().reply("streaming works fine").chunks(4).start().await;
    let mut resp = post_chat(&server, true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    for _ in 0..1000 {
        match resp.chunk().await.unwrap() {
            Some(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
            None => break,
        }
    }
    let data: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let content: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(content, "streaming works fine");
}

#[tokio::test]
async fn cut_stream_is_a_body_error() {
    let server = ChaosServer::builder().chunks(4).start().await;
    server.script([Fault::StreamCut { after_chunks: 2 }]);
    let mut resp = post_chat(&server, true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut received = String::new();
    let mut error = None;
    for _ in 0..1000 {
        match resp.chunk().await {
            Ok(Some(bytes)) => received.push_str(std::str::from_utf8(&bytes).unwrap()),
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("the cut is an error, not a clean end");
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    assert_eq!(received.matches("data: ").count(), 2);
    assert!(!received.contains("[DONE]"));
}

#[tokio::test]
async fn resets_are_request_errors() {
    let server = ChaosServer::start().await;
    server.script([Fault::ResetBeforeResponse, Fault::ResetDuringBody]);
    let err = post_chat(&server, false).await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    let resp = post_chat(&server, false).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.is_err());
    assert_eq!(post_chat(&server, false).await.unwrap().status(), 200);
}

#[tokio::test]
async fn hang_hits_the_client_timeout() {
    let server = ChaosServer::start().await;
    server.script([Fault::Hang]);
    let err = client()
        .post(format!("{}/chat/completions", server.openai_base()))
        .timeout(Duration::from_millis(50))
        .json(&chat_request(false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.requests()[0].fault(), Some(&Fault::Hang));
}

#[tokio::test]
async fn anthropic_overloaded() {
    let server = ChaosServer::start().await;
    server.script([Fault::Status(529).with_should_retry(true)]);
    let resp = client()
        .post(format!("{}/v1/messages", server.url()))
        .header("x-api-key", "sk-ant-do-not-record")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    assert_eq!(resp.headers()["x-should-retry"], "true");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let record = &server.requests()[0];
    assert!(record.had_authorization);
    assert_eq!(record.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn connection_refused() {
    let refused = RefusedPort::bind().unwrap();
    let err = client()
        .post(format!("{}/chat/completions", refused.openai_base()))
        .json(&chat_request(false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}
