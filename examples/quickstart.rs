//! The main job: a realistic workload of annotated LLM calls that survives injected faults.
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! With no configuration it starts the chaos LLM server in-process on 127.0.0.1 and sends it 20
//! chat completions, about 30% of whose attempts fail in the ways real providers fail: 429s with
//! Retry-After, 5xx and 529s, connection resets, hangs, and the odd bad API key. Each retry is
//! printed as it happens; a per-function stats table closes the run.
//!
//! With `OPENAI_API_KEY` set (and optionally `OPENAI_BASE_URL` and `OPENAI_MODEL`), the same calls
//! go to that endpoint instead.

use llm_retry::{ApiError, InvalidOutput, llm_retry};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, RetryAfterHeader};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where the calls go, and with which key. The key never reaches a log line: `ApiError`, the
/// events and the stats carry none of the request.
struct Llm {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    model: String,
}

/// Rejects an empty completion, so that it is retried like any other failure.
fn non_empty<S: AsRef<str>>(text: &S) -> Result<(), InvalidOutput> {
    if text.as_ref().trim().is_empty() { Err(InvalidOutput::new("the model returned empty text")) } else { Ok(()) }
}

/// One chat completion. Everything about retrying is in the attribute.
#[llm_retry(
    max = 5,
    backoff = "exponential",
    base = "100ms",
    max_delay = "2s",
    attempt_timeout = "2s",
    deadline = "20s",
    max_retry_after = "30s",
    validate = non_empty,
)]
async fn chat(llm: &Llm, prompt: &str) -> Result<String, ApiError> {
    let mut request = llm.http.post(format!("{}/chat/completions", llm.base)).json(&json!({
        "model": llm.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 60,
    }));
    if let Some(key) = &llm.key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    let body: Value = response.json().await?;
    Ok(body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_string())
}

/// A fault mix like a busy provider's: about 30% of attempts fail.
fn chaos() -> Chaos {
    Chaos::seeded(2026)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(0.3) }, 0.05)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Millis(150) }, 0.03)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::ResetRequests(Duration::from_millis(200)) }, 0.02)
        .with(Fault::Status(500), 0.04)
        .with(Fault::Status(503), 0.04)
        .with(Fault::Status(529), 0.03)
        .with(Fault::ResetBeforeResponse, 0.04)
        .with(Fault::Hang, 0.02)
        .with(Fault::InvalidApiKey, 0.015)
        .with(Fault::ContextLengthExceeded, 0.015)
}

const PROMPTS: [&str; 20] = [
    "Summarize the plot of Hamlet in one sentence.",
    "Name three uses of a retry budget.",
    "What does HTTP 429 mean?",
    "Translate 'good morning' into French.",
    "Give a haiku about backoff and jitter.",
    "What is a thundering herd?",
    "Explain Retry-After in ten words.",
    "Suggest a name for a rate limiter.",
    "What is the capital of Australia?",
    "List two prime numbers above 100.",
    "Why should a 401 never be retried?",
    "What is decorrelated jitter?",
    "Describe a token bucket.",
    "What does 529 mean at Anthropic?",
    "Write a limerick about timeouts.",
    "How many seconds are in a day?",
    "What is an idempotent request?",
    "Name a sorting algorithm that is stable.",
    "What does SSE stand for?",
    "Say hello in Japanese.",
];

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).with_env_filter("llm_retry=warn").init();

    let key = std::env::var("OPENAI_API_KEY").ok().filter(|k| !k.is_empty());
    let _server; // keeps the chaos server alive until the end
    let llm = match key {
        Some(key) => Llm {
            http: reqwest::Client::new(),
            base: std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into()),
            key: Some(key),
            model: std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into()),
        },
        None => {
            let server =
                ChaosServer::builder().reply("A short answer from the chaos server.").chaos(chaos()).start().await;
            println!("chaos LLM server on {} (set OPENAI_API_KEY to call a real endpoint)\n", server.url());
            let llm =
                Llm { http: reqwest::Client::new(), base: server.openai_base(), key: None, model: "chaos-1".into() };
            _server = server;
            llm
        }
    };

    let started = Instant::now();
    // Four calls in flight at a time, like a small worker pool.
    let mut results = Vec::new();
    for batch in PROMPTS.chunks(4) {
        let calls = batch.iter().map(|p| chat(&llm, p));
        results.extend(futures::future::join_all(calls).await);
    }

    println!();
    for (prompt, result) in PROMPTS.iter().zip(&results) {
        match result {
            Ok(text) => println!("ok    {prompt:<50} -> {}", text.chars().take(40).collect::<String>()),
            Err(e) => println!("error {prompt:<50} -> {e}"),
        }
    }
    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!("\n{ok}/{} calls succeeded in {:.1?}\n", results.len(), started.elapsed());
    print!("{}", llm_retry::stats());
}
