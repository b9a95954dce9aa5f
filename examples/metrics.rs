//! Retry metrics as Prometheus text, with a budget, a client-side limiter and adaptive delay
//! shared by two call sites of one (simulated, in-process) endpoint.
//!
//! ```text
//! cargo run --example metrics --features metrics
//! ```
//!
//! The endpoint admits 20 requests a second and answers the rest with 429 and a Retry-After,
//! and 2% of its answers are 503s. 40 calls a second arrive for 30 s (in tokio's paused clock,
//! so the run takes well under a second). The Prometheus recorder is installed with its
//! render-only handle: no HTTP listener, no push gateway.

use llm_retry::{Adaptive, ApiError, Budget, Limiter, Policy, http::RetryAfter, stats::Site};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

const POLICY: Policy = match Policy::builder().max_attempts(6).build() {
    Ok(p) => p,
    Err(e) => panic!("{}", e.message()),
};

static CHAT: Site = Site::new("app::chat", POLICY);
static SUMMARIZE: Site = Site::new("app::summarize", POLICY);
static OPENAI: Limiter = Limiter::new("openai");
/// Retries up to 10% of successes, with 20 in reserve for bursts of 429s.
static OPENAI_BUDGET: Budget = match Budget::builder().ratio(0.1).burst(20).build() {
    Ok(b) => b,
    Err(e) => panic!("{}", e.message()),
};
static OPENAI_ERRORS: Adaptive = Adaptive::new();

/// The provider's rate limit: one request every 50 ms, 5 at once.
static NEXT_FREE: Mutex<Option<Instant>> = Mutex::new(None);

async fn call_endpoint(n: u64) -> Result<u64, ApiError> {
    let now = Instant::now();
    let verdict = {
        let mut next = NEXT_FREE.lock().unwrap();
        let tat = next.unwrap_or(now).max(now);
        if tat > now + Duration::from_millis(200) {
            Err(tat - now - Duration::from_millis(200))
        } else {
            *next = Some(tat + Duration::from_millis(50));
            Ok(())
        }
    };
    match verdict {
        Err(wait) => Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(wait))),
        Ok(()) if n % 50 == 7 => Err(ApiError::from_status(503)),
        Ok(()) => Ok(n),
    }
}

async fn one_call(site: &'static Site, n: u64) -> Result<u64, ApiError> {
    llm_retry::call::Call::new(site)
        .budget(&OPENAI_BUDGET)
        .limiter(&OPENAI)
        .adaptive(&OPENAI_ERRORS)
        .retry(|| call_endpoint(n))
        .await
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let handle = PrometheusBuilder::new().install_recorder().expect("no other recorder is installed");
    llm_retry::rng::seed_thread_rng(1);

    let start = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..1200u64 {
        tokio::time::sleep_until(start + Duration::from_millis(25 * n)).await;
        let site = if n % 3 == 0 { &SUMMARIZE } else { &CHAT };
        tasks.push(tokio::spawn(one_call(site, n)));
    }
    let mut ok = 0;
    for t in tasks {
        ok += u32::from(t.await.expect("no panic").is_ok());
    }

    llm_retry::metrics::export();
    println!("{}", handle.render());
    println!("{}", llm_retry::stats());
    println!("{ok} of 1200 calls succeeded; limiter: {:?}; budget: {:?}", OPENAI.stats(), OPENAI_BUDGET.stats());
}
