//! Every fault, seen on the wire through a raw TCP client.

use std::time::{Duration, SystemTime};

use crate::common::*;
use llm_retry_testkit::{ChaosServer, Fault, Outcome, RetryAfterHeader};
use serde_json::{Value, json};

async fn serve_one(fault: Fault) -> (ChaosServer, Parsed) {
    let server = ChaosServer::start().await;
    server.script([fault]);
    let raw = chat(server.addr(), false).await;
    assert_eq!(raw.end, End::Eof, "a served response ends with an orderly close");
    let parsed = raw.response();
    (server, parsed)
}

#[tokio::test]
async fn ok_is_a_chat_completion() {
    let (server, resp) = serve_one(Fault::Ok).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body = resp.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "This is a deterministic reply from llm-retry-testkit to: Hi");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 1);
    let c = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(body["usage"]["total_tokens"].as_u64().unwrap(), 1 + c);
    assert_eq!(server.requests()[0].outcome, Outcome::Served(Fault::Ok));
}

#[tokio::test]
async fn ok_is_deterministic_and_configurable() {
    let server = ChaosServer::builder().reply("Hello").start().await;
    let a = chat(server.addr(), false).await.response().json();
    let b = chat(server.addr(), false).await.response().json();
    assert_eq!(a["choices"], b["choices"]);
    assert_eq!(a["choices"][0]["message"]["content"], "Hello");
    let m = messages(server.addr(), false).await.response();
    assert_eq!(m.status, 200);
    let m = m.json();
    assert_eq!(m["type"], "message");
    assert_eq!(m["content"][0], json!({"type": "text", "text": "Hello"}));
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["output_tokens"], 1);
}

async fn rate_limited_headers(retry_after: RetryAfterHeader) -> Parsed {
    let (_server, resp) = serve_one(Fault::RateLimited { retry_after }).await;
    assert_eq!(resp.status, 429);
    let body = resp.json();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    resp
}

#[tokio::test]
async fn rate_limited_with_every_hint() {
    let resp = rate_limited_headers(RetryAfterHeader::Seconds(2.0)).await;
    assert_eq!(resp.header("retry-after"), Some("2"));
    let resp = rate_limited_headers(RetryAfterHeader::Seconds(1.5)).await;
    assert_eq!(resp.header("retry-after"), Some("1.5"));
    let resp = rate_limited_headers(RetryAfterHeader::Millis(250)).await;
    assert_eq!(resp.header("retry-after-ms"), Some("250"));
    assert_eq!(resp.header("retry-after"), None);
    let resp = rate_limited_headers(RetryAfterHeader::ResetRequests(Duration::from_secs(1))).await;
    assert_eq!(resp.header("x-ratelimit-reset-requests"), Some("1s"));
    let resp = rate_limited_headers(RetryAfterHeader::ResetTokens(Duration::from_millis(20))).await;
    assert_eq!(resp.header("x-ratelimit-reset-tokens"), Some("20ms"));
    let resp = rate_limited_headers(RetryAfterHeader::None).await;
    assert_eq!(resp.header("retry-after"), None);
    let resp = rate_limited_headers(RetryAfterHeader::Many(vec![
        RetryAfterHeader::Seconds(3.0),
        RetryAfterHeader::Millis(2500),
    ]))
    .await;
    assert_eq!(resp.header("retry-after"), Some("3"));
    assert_eq!(resp.header("retry-after-ms"), Some("2500"));

    let before = SystemTime::now();
    let resp = rate_limited_headers(RetryAfterHeader::HttpDate(Duration::from_secs(5))).await;
    let date = httpdate::parse_http_date(resp.header("retry-after").unwrap()).unwrap();
    let ahead = date.duration_since(before).unwrap();
    assert!(ahead >= Duration::from_secs(5) && ahead <= Duration::from_secs(7), "{ahead:?}");
}

#[tokio::test]
async fn insufficient_quota_is_429_with_openai_body() {
    let (_server, resp) = serve_one(Fault::InsufficientQuota).await;
    assert_eq!(resp.status, 429);
    let body = resp.json();
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(body["error"]["param"], Value::Null);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("You exceeded your current quota"));
    assert_eq!(resp.header("retry-after"), None);
}

#[tokio::test]
async fn invalid_api_key_is_401() {
    let (_server, resp) = serve_one(Fault::InvalidApiKey).await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn context_length_exceeded_is_400() {
    let (_server, resp) = serve_one(Fault::ContextLengthExceeded).await;
    assert_eq!(resp.status, 400);
    let body = resp.json();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn server_errors_in_openai_shape_and_529_in_anthropic_shape() {
    for code in [500, 502, 503, 504] {
        let (_server, resp) = serve_one(Fault::Status(code)).await;
        assert_eq!(resp.status, code);
        let body = resp.json();
        assert_eq!(body["error"]["type"], "server_error", "{code}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    let (_server, resp) = serve_one(Fault::Status(529)).await;
    assert_eq!(resp.status, 529);
    assert_eq!(resp.json(), json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}));
}

#[tokio::test]
async fn anthropic_route_uses_anthropic_error_bodies() {
    let server = ChaosServer::start().await;
    let cases = [
        (Fault::Status(529), 529, "overloaded_error"),
        (Fault::Status(500), 500, "api_error"),
        (Fault::Status(504), 504, "timeout_error"),
        (Fault::rate_limited(1.0), 429, "rate_limit_error"),
        (Fault::InvalidApiKey, 401, "authentication_error"),
        (Fault::ContextLengthExceeded, 400, "invalid_request_error"),
        (Fault::InsufficientQuota, 429, "billing_error"),
    ];
    server.script(cases.iter().map(|(f, _, _)| f.clone()));
    for (fault, status, kind) in cases {
        let resp = messages(server.addr(), false).await.response();
        assert_eq!(resp.status, status, "{fault:?}");
        let body = resp.json();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind, "{fault:?}");
    }
}

#[tokio::test]
async fn should_retry_header_on_any_response() {
    let (_server, resp) = serve_one(Fault::Status(503).with_should_retry(true)).await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("x-should-retry"), Some("true"));
    let (_server, resp) = serve_one(Fault::Status(500).with_should_retry(false)).await;
    assert_eq!(resp.header("x-should-retry"), Some("false"));
    let (_server, resp) = serve_one(Fault::Ok.with_should_retry(false)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-should-retry"), Some("false"));
    let (_server, resp) = serve_one(Fault::Status(500)).await;
    assert_eq!(resp.header("x-should-retry"), None);
}

#[tokio::test]
async fn custom_response() {
    let (_server, resp) = serve_one(Fault::Custom {
        status: 418,
        headers: vec![("x-teapot".into(), "yes".into()), ("bad header".into(), "skipped".into())],
        body: "{\"short\":\"stout\"}".into(),
    })
    .await;
    assert_eq!(resp.status, 418);
    assert_eq!(resp.header("x-teapot"), Some("yes"));
    assert_eq!(resp.json(), json!({"short": "stout"}));
}

#[tokio::test]
async fn out_of_range_status_becomes_500() {
    let (_server, resp) = serve_one(Fault::Status(42)).await;
    assert_eq!(resp.status, 500);
}

#[tokio::test]
async fn reset_before_response_sends_nothing_then_rst() {
    let server = ChaosServer::start().await;
    server.script([Fault::ResetBeforeResponse]);
    let raw = chat(server.addr(), false).await;
    assert_eq!(raw.end, End::Reset);
    assert!(raw.bytes.is_empty(), "{:?}", String::from_utf8_lossy(&raw.bytes));
    assert_eq!(server.requests()[0].fault(), Some(&Fault::ResetBeforeResponse));
    // The server is fine afterwards.
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
}

#[tokio::test]
async fn reset_during_body_sends_half_then_rst() {
    let server = ChaosServer::start().await;
    server.script([Fault::ResetDuringBody]);
    let raw = chat(server.addr(), false).await;
    assert_eq!(raw.end, End::Reset);
    let resp = raw.response();
    assert_eq!(resp.status, 200);
    let announced: usize = resp.header("content-length").unwrap().parse().unwrap();
    assert!(!resp.body.is_empty() && resp.body.len() < announced, "{} of {announced}", resp.body.len());
    assert!(serde_json::from_slice::<Value>(&resp.body).is_err());
}

#[tokio::test]
async fn slow_first_byte_delays_the_status_line() {
    let server = ChaosServer::start().await;
    let delay = Duration::from_millis(30);
    server.script([Fault::slow_first_byte(delay), Fault::Status(503).delayed(delay)]);
    let started = std::time::Instant::now();
    let raw = chat(server.addr(), false).await;
    assert!(started.elapsed() >= delay);
    assert_eq!(raw.response().status, 200);
    let started = std::time::Instant::now();
    assert_eq!(chat(server.addr(), false).await.response().status, 503);
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn hang_never_answers_until_the_client_gives_up() {
    let server = ChaosServer::start().await;
    server.script([Fault::Hang]);
    let raw = exchange(server.addr(), &post(CHAT, &chat_body("Hi", false), &[]), Duration::from_millis(50)).await;
    assert_eq!(raw.end, End::TimedOut);
    assert!(raw.bytes.is_empty());
    assert_eq!(server.requests()[0].fault(), Some(&Fault::Hang));
    // Other connections are unaffected.
    assert_eq!(chat(server.addr(), false).await.response().status, 200);
}

#[tokio::test]
async fn hang_ends_when_the_server_shuts_down() {
    let server = ChaosServer::start().await;
    server.script([Fault::Hang]);
    let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &post(CHAT, &chat_body("Hi", false), &[])).await.unwrap();
    // Wait (bounded) until the server has the request.
    for _ in 0..1000 {
        if server.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(server.request_count(), 1);
    tokio::time::timeout(PATIENCE, server.shutdown()).await.expect("shutdown does not wait for hanging clients");
    let raw = read_all(&mut tcp, PATIENCE).await;
    assert_ne!(raw.end, End::TimedOut);
    assert!(raw.bytes.is_empty());
}
