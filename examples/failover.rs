//! Failover: a primary provider goes down mid-run and recovers; a circuit breaker sends the
//! calls to the fallback while it is down, and one probe at a time brings them back.
//!
//! ```sh
//! cargo run --example failover
//! ```
//!
//! Two chaos LLM servers run in-process on 127.0.0.1: the primary and the fallback. 60 calls
//! go out at 10 a second. At call 10 the primary starts answering every request with a 503;
//! at call 35 it recovers. Each line says which target served the call and how long it took;
//! the breaker's moves (opened, half-open, closed) are printed as they happen, by the
//! runtime's own tracing events. The run ends with each server's request count.

use llm_retry::failover::{Breaker, BreakerState, Fallback, Target};
use llm_retry::{ApiError, Backoff, Policy, RetryExt};
use llm_retry_testkit::{Chaos, ChaosServer, Fault};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Opens after 3 failed attempts in a row; a probe after 1 s open.
static PRIMARY_BREAKER: Breaker =
    match Breaker::builder("primary").consecutive_failures(3).cooldown(Duration::from_secs(1)).build() {
        Ok(b) => b,
        Err(e) => panic!("{}", e.message()),
    };
static PRIMARY: Target = Target::new("primary").breaker(&PRIMARY_BREAKER);
static FALLBACK: Target = Target::new("fallback");
static CHAIN: Fallback<'static> = match Fallback::new(&[&PRIMARY, &FALLBACK]) {
    Ok(c) => c,
    Err(e) => panic!("{}", e.message()),
};

const POLICY: Policy =
    match Policy::builder().max_attempts(3).backoff(Backoff::Fixed { delay: Duration::from_millis(50) }).build() {
        Ok(p) => p,
        Err(e) => panic!("{}", e.message()),
    };

/// One chat completion on `base`.
async fn chat(http: &reqwest::Client, base: &str, prompt: &str) -> Result<String, ApiError> {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": 20});
    let response = http.post(format!("{base}/chat/completions")).json(&body).send().await?;
    if !response.status().is_success() {
        return Err(ApiError::from_reqwest_response(response).await);
    }
    let body: Value = response.json().await?;
    Ok(body.pointer("/choices/0/message/content").and_then(Value::as_str).unwrap_or_default().to_string())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(false).with_env_filter("llm_retry=info").init();
    let primary = ChaosServer::builder().reply("from the primary").start().await;
    let fallback = ChaosServer::builder().reply("from the fallback").start().await;
    let (primary_base, fallback_base) = (primary.openai_base(), fallback.openai_base());
    let http = reqwest::Client::new();
    let start = Instant::now();
    let mut by_primary_while_open = 0;

    for n in 0..60 {
        match n {
            10 => {
                println!("--- the primary goes down: every request gets a 503");
                primary.set_chaos(Some(Chaos::seeded(1).with(Fault::Status(503), 1.0)));
            }
            35 => {
                println!("--- the primary recovers");
                primary.set_chaos(None);
            }
            _ => {}
        }
        let open_before = PRIMARY_BREAKER.state() == BreakerState::Open;
        let t = Instant::now();
        let out: Result<(String, &str), ApiError> = POLICY
            .call()
            .fallback(CHAIN)
            .retry(|target| {
                let base = if target.name() == "primary" { &primary_base } else { &fallback_base };
                let http = &http;
                async move { chat(http, base, "Say hello.").await.map(|text| (text, target.name())) }
            })
            .await;
        let took = t.elapsed();
        match out {
            Ok((_, served_by)) => {
                if open_before && served_by == "primary" {
                    by_primary_while_open += 1;
                }
                println!(
                    "call {n:2}  t={:5.2}s  served by {served_by:8}  in {:4} ms  (breaker {})",
                    start.elapsed().as_secs_f64(),
                    took.as_millis(),
                    PRIMARY_BREAKER.state()
                );
            }
            Err(e) => println!("call {n:2}  failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let st = PRIMARY_BREAKER.stats();
    println!(
        "\nbreaker: opened {} times, half-open {} times, closed {} times; {} calls skipped the primary, {} probes",
        st.opened, st.half_opened, st.closed, st.refused, st.probes
    );
    println!(
        "requests: primary {}, fallback {}; {} calls were served by the primary while its breaker was open (probes)",
        primary.request_count(),
        fallback.request_count(),
        by_primary_while_open
    );
    primary.shutdown().await;
    fallback.shutdown().await;
}
