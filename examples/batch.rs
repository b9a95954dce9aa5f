//! Batch retry: 200 prompts through a rate-limited, flaky LLM server, 16 at a time, with a live
//! progress bar and a summary.
//!
//! ```sh
//! cargo run --example batch
//! ```
//!
//! It starts the chaos LLM server in-process on 127.0.0.1 with a token-bucket rate limit
//! (1,200 requests a minute, 4 at once) and random faults on top: 503s, 529s, connection
//! resets, and the odd bad API key or oversized prompt. The batch retries each prompt on its
//! own schedule and paces every attempt through a `Limiter` (its own here; give it the
//! endpoint's with `.limiter(&L)`): when one of them meets a 429, the limiter holds the others
//! for its Retry-After and lets them go at a rate, instead of letting each of them discover the
//! limit with a 429 of its own. To see the difference, run it again without the limiter (each
//! item then handles its own 429s):
//!
//! ```sh
//! NO_GATE=1 cargo run --example batch
//! ```
//!
//! A typical run: with the limiter, 197/200 succeed (the 3 failures are a 401 and two oversized
//! prompts, never retried) in about 15 s with about 15 429s; without it, about 1,100 429s and
//! about 100 prompts give up after 8 attempts.

use indicatif::{ProgressBar, ProgressStyle};
use llm_retry::{ApiError, ErrorKind, Policy, RetryExt, batch::Progress};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, Outcome};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One chat completion, one attempt: the batch does the retrying (so this fn carries no
/// `#[llm_retry]`, which would retry inside every batch attempt).
async fn ask(http: &reqwest::Client, url: &str, prompt: String) -> Result<String, ApiError> {
    let body = json!({ "model": "chaos-1", "messages": [{ "role": "user", "content": prompt }] });
    let response = http.post(url).json(&body).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    if status != 200 {
        return Err(ApiError::from_response(status, &headers, &bytes));
    }
    let reply: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::new(ErrorKind::Other, e.to_string()))?;
    Ok(reply.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_string())
}

fn chaos() -> Chaos {
    Chaos::seeded(6)
        .with(Fault::Status(503), 0.05)
        .with(Fault::Status(529), 0.03)
        .with(Fault::ResetBeforeResponse, 0.03)
        .with(Fault::InvalidApiKey, 0.01)
        .with(Fault::ContextLengthExceeded, 0.01)
}

fn draw(bar: &ProgressBar, p: &Progress) {
    bar.set_position(p.finished() as u64);
    let gate = if p.gate_wait.is_zero() { String::new() } else { format!(", paused {:.0?}", p.gate_wait) };
    bar.set_message(format!(
        "{} ok, {} failed, {} in flight, {} retries, {} 429s{gate}",
        p.succeeded, p.failed, p.in_flight, p.retries, p.rate_limited
    ));
}

#[tokio::main]
async fn main() {
    let server = ChaosServer::builder().reply("An answer.").rate_limit(1_200, 4).chaos(chaos()).start().await;
    println!("chaos LLM server on {}: 1,200 requests a minute, 4 at once, ~13% faults\n", server.url());
    let http = reqwest::Client::new();
    let url = server.chat_completions_url();
    let prompts: Vec<String> = (0..200).map(|i| format!("Summarize document #{i} in one line.")).collect();

    let bar = ProgressBar::new(prompts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let drawn = bar.clone();
    let policy =
        Policy::builder().max_attempts(8).max_retry_after(Duration::from_secs(10)).build().expect("a valid policy");
    let gate = std::env::var_os("NO_GATE").is_none();
    println!("the batch's limiter: {}\n", if gate { "on" } else { "off (NO_GATE)" });
    let batch = policy
        .batch()
        .concurrency(16)
        .shared_gate(gate)
        .on_progress(move |p| draw(&drawn, p))
        .build()
        .expect("concurrency is above 0");

    let started = Instant::now();
    let results = batch.run(prompts, |p| ask(&http, &url, p)).await;
    bar.finish();

    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!("\n{ok}/{} prompts succeeded in {:.1?}", results.len(), started.elapsed());
    let mut reasons = BTreeMap::<String, Vec<usize>>::new();
    for r in &results {
        if let Err(e) = &r.outcome {
            let status = e.status().map_or_else(String::new, |s| format!(" ({s})"));
            reasons.entry(format!("{}{status}", e.kind())).or_default().push(r.index);
        }
    }
    for (reason, items) in &reasons {
        println!("  failed: {reason}: {} items {items:?}", items.len());
    }
    let mut calls = BTreeMap::<u32, usize>::new();
    for r in &results {
        *calls.entry(r.attempts).or_default() += 1;
    }
    let attempts: u32 = results.iter().map(|r| r.attempts).sum();
    println!(
        "calls per item: {:.2} on average; {}",
        f64::from(attempts) / results.len() as f64,
        calls.iter().map(|(n, items)| format!("{items} items × {n}")).collect::<Vec<_>>().join(", ")
    );
    let limited: u32 = results.iter().map(|r| r.rate_limited).sum();
    let refused = server.requests().iter().filter(|r| matches!(r.outcome, Outcome::RateLimited { .. })).count();
    println!(
        "rate limits: {refused} 429s from the limiter, {limited} 429s and 529s in all, for {} requests",
        server.request_count()
    );
}
