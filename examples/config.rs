//! A policy and an endpoint's limiter and budget, loaded from a TOML file at startup.
//!
//! ```sh
//! cargo run --example config
//! ```
//!
//! It reads `examples/config.toml` (the attribute's keys, durations in human units), sets the
//! policy into a `static PolicySlot` and builds the endpoint's limiter and budget from it, shows
//! the error an invalid file gets, then makes a few chat completions against the chaos LLM
//! server in-process, through an `#[llm_retry(policy = CHAT, ...)]` fn: the loaded policy.

use llm_retry::config::{self, PolicySlot};
use llm_retry::{ApiError, Budget, Limiter, Policy, llm_retry};
use llm_retry_testkit::{Chaos, ChaosServer, Fault, RetryAfterHeader};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Instant;

/// The chat endpoint's policy: the defaults until the configuration is loaded.
static CHAT: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
/// The chat endpoint's limiter and budget, built from the configuration.
static OPENAI: OnceLock<Limiter> = OnceLock::new();
static OPENAI_BUDGET: OnceLock<Budget> = OnceLock::new();

/// One chat completion, retried under the loaded policy, through the endpoint's limiter and
/// budget (each absent until built from the file), within two minutes in all.
#[llm_retry(policy = CHAT, limiter = OPENAI, budget = OPENAI_BUDGET, deadline = "2m")]
async fn chat(http: &reqwest::Client, base: &str, prompt: &str) -> Result<String, ApiError> {
    let response = http
        .post(format!("{base}/chat/completions"))
        .json(&json!({"model": "chaos", "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    let body: Value = response.json().await?;
    Ok(body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("llm_retry=info").with_target(false).init();

    // Startup: read the file, set the policy once, build the endpoint's controls.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.toml");
    let loaded = config::from_toml_str(&std::fs::read_to_string(path)?)?;
    println!("loaded {path}:\n  {:?}\n", loaded.policy);
    CHAT.set(loaded.policy)?;
    if let Some(limiter) = loaded.limiter {
        let _ = OPENAI.set(Limiter::from_config(limiter.config("openai")?));
    }
    if let Some(budget) = loaded.budget {
        let _ = OPENAI_BUDGET.set(budget.build()?);
    }

    // What an operator sees for a bad file: the key, and what is allowed.
    let bad = "max = 3\nbase = \"500\"\n";
    println!("an invalid file:\n  {bad:?}\n  -> {}", config::from_toml_str(bad).unwrap_err());
    let bad = "max = 3\n\n[[rule]]\non = \"RateLimited\"\nmax = 5\n";
    println!("  {bad:?}\n  -> {}", config::from_toml_str(bad).unwrap_err());
    let vars = [("CHAT_RETRY_MAX", "3"), ("CHAT_RETRY_ON", "RateLimited,Auth")];
    println!("  environment {vars:?}\n  -> {}\n", config::from_env_vars("CHAT_RETRY_", vars).unwrap_err());

    // A few calls against the chaos server, under the loaded policy.
    let chaos = Chaos::seeded(7)
        .with(Fault::RateLimited { retry_after: RetryAfterHeader::Millis(200) }, 0.15)
        .with(Fault::Status(503), 0.15)
        .with(Fault::ResetBeforeResponse, 0.05);
    let server = ChaosServer::builder().reply("A short answer from the chaos server.").chaos(chaos).start().await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut ok = 0;
    for i in 0..8 {
        match chat(&http, &server.openai_base(), &format!("question {i}")).await {
            Ok(text) => {
                ok += 1;
                println!("call {i}: {text}");
            }
            Err(e) => println!("call {i} gave up: {e}"),
        }
    }
    let attempts = server.requests().len();
    println!("\n{ok}/8 calls succeeded in {attempts} attempts, {:.1?}", started.elapsed());
    if let Some(budget) = OPENAI_BUDGET.get() {
        println!("budget: {:?}", budget.stats());
    }
    Ok(())
}
