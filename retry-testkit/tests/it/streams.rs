//! SSE streams: full, cut after k chunks, and `event: error` after a 200.

use crate::common::*;
use llm_retry_testkit::{ChaosServer, Fault};
use serde_json::Value;

fn openai_contents(events: &[(Option<String>, String)]) -> Vec<String> {
    events
        .iter()
        .filter(|(name, data)| name.is_none() && data != "[DONE]")
        .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

fn anthropic_texts(events: &[(Option<String>, String)]) -> Vec<String> {
    events
        .iter()
        .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
        .map(|(_, data)| serde_json::from_str::<Value>(data).unwrap()["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn openai_stream_is_chunked_sse_ending_in_done() {
    let server = ChaosServer::builder().reply("The quick brown fox jumps").chunks(5).start().await;
    let raw = chat(server.addr(), true).await;
    assert_eq!(raw.end, End::Eof);
    let resp = raw.response();
    assert_eq!(resp.status, 200);
    assert!(resp.header("content-type").unwrap().starts_with("text/event-stream"));
    assert!(resp.is_chunked());
    let (payload, complete) = resp.payload();
    assert!(complete);
    let events = sse_events(std::str::from_utf8(&payload).unwrap());
    let contents = openai_contents(&events);
    assert_eq!(contents.len(), 5);
    assert_eq!(contents.concat(), "The quick brown fox jumps");
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let finish: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(server.requests()[0].stream);
}

#[tokio::test]
async fn openai_stream_with_usage() {
    let server = ChaosServer::builder().reply("a b c").chunks(2).start().await;
    let body = serde_json::json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
                                  "messages": [{"role": "user", "content": "one two"}]})
    .to_string();
    let text = exchange(server.addr(), &post(CHAT, &body, &[]), PATIENCE).await.response().text();
    let events = sse_events(&text);
    let usage: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 2);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn anthropic_stream_has_the_event_sequence() {
    let server = ChaosServer::builder().reply("Hello, Claude here").chunks(3).start().await;
    let text = messages(server.addr(), true).await.response().text();
    let events = sse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(anthropic_texts(&events).concat(), "Hello, Claude here");
}

#[tokio::test]
async fn stream_cut_after_k_chunks_resets_mid_stream() {
    let server = ChaosServer::builder().reply("one two three four five").chunks(5).start().await;
    server.script([Fault::StreamCut { after_chunks: 2 }, Fault::StreamCut { after_chunks: 0 }]);
    let raw = chat(server.addr(), true).await;
    assert_eq!(raw.end, End::Reset);
    let resp = raw.response();
    assert_eq!(resp.status, 200);
    let (payload, complete) = resp.payload();
    assert!(!complete, "no terminating chunk");
    let events = sse_events(std::str::from_utf8(&payload).unwrap());
    assert_eq!(openai_contents(&events), ["one ", "two t"]);
    assert!(events.iter().all(|(_, d)| d != "[DONE]"));

    let raw = chat(server.addr(), true).await;
    assert_eq!(raw.end, End::Reset);
    let resp = raw.response();
    assert_eq!(resp.status, 200);
    assert!(resp.payload().0.is_empty());
}

#[tokio::test]
async fn anthropic_stream_cut_keeps_the_prelude() {
    let server = ChaosServer::builder().reply("abcdef").chunks(3).start().await;
    server.script([Fault::StreamCut { after_chunks: 1 }]);
    let raw = messages(server.addr(), true).await;
    assert_eq!(raw.end, End::Reset);
    let events = sse_events(std::str::from_utf8(&raw.response().payload().0).unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(names, ["message_start", "content_block_start", "content_block_delta"]);
    assert_eq!(anthropic_texts(&events), ["ab"]);
}

#[tokio::test]
async fn stream_cut_on_a_plain_request_resets_during_the_body() {
    let server = ChaosServer::start().await;
    server.script([Fault::StreamCut { after_chunks: 1 }]);
    let raw = chat(server.addr(), false).await;
    assert_eq!(raw.end, End::Reset);
    let resp = raw.response();
    assert!(resp.body.len() < resp.header("content-length").unwrap().parse::<usize>().unwrap());
}

#[tokio::test]
async fn reset_during_a_stream_sends_half_the_chunks() {
    let server = ChaosServer::builder().reply("abcdefgh").chunks(4).start().await;
    server.script([Fault::ResetDuringBody]);
    let raw = chat(server.addr(), true).await;
    assert_eq!(raw.end, End::Reset);
    let events = sse_events(std::str::from_utf8(&raw.response().payload().0).unwrap());
    assert_eq!(openai_contents(&events), ["ab", "cd"]);
}

#[tokio::test]
async fn event_error_after_200() {
    let server = ChaosServer::builder().reply("abcdef").chunks(3).start().await;
    server.script([Fault::StreamError { after_chunks: 2 }, Fault::StreamError { after_chunks: 1 }]);
    let raw = chat(server.addr(), true).await;
    assert_eq!(raw.end, End::Eof);
    let resp = raw.response();
    assert_eq!(resp.status, 200);
    let (payload, complete) = resp.payload();
    assert!(complete, "the body ends cleanly after the error event");
    let events = sse_events(std::str::from_utf8(&payload).unwrap());
    assert_eq!(openai_contents(&events), ["ab", "cd"]);
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    let error: Value = serde_json::from_str(data).unwrap();
    assert_eq!(error["error"]["code"], "overloaded");

    let events = sse_events(&messages(server.addr(), true).await.response().text());
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    assert_eq!(
        serde_json::from_str::<Value>(data).unwrap(),
        serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(anthropic_texts(&events), ["ab"]);
}

#[tokio::test]
async fn chunk_delay_spaces_the_events() {
    let delay = std::time::Duration::from_millis(10);
    let server = ChaosServer::builder().chunks(3).chunk_delay(delay).start().await;
    let started = std::time::Instant::now();
    let resp = chat(server.addr(), true).await.response();
    // 3 content events + finish + [DONE] = 5 frames, 4 gaps.
    assert!(started.elapsed() >= delay * 4, "{:?}", started.elapsed());
    assert_eq!(openai_contents(&sse_events(&resp.text())).len(), 3);
}

#[tokio::test]
async fn chunks_by_size() {
    let server = ChaosServer::builder().reply("abcdefg").chunk_chars(3).start().await;
    let events = sse_events(&chat(server.addr(), true).await.response().text());
    assert_eq!(openai_contents(&events), ["abc", "def", "g"]);
}
