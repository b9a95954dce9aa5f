//! The attribute's `budget`, `limiter` and `adaptive` keys: the per-endpoint state is the
//! user's `static`, shared by every annotated fn that names it.

use llm_retry::{Adaptive, ApiError, Budget, GiveUp, Limiter, RetryEvent, llm_retry};
use std::sync::Mutex;
use std::time::Duration;

fn stats(site: &str) -> llm_retry::stats::SiteStats {
    llm_retry::stats().get(site).unwrap_or_default()
}

// ------------------------------------------------------------------------------------------
// budget = PATH: two fns spend one budget.
// ------------------------------------------------------------------------------------------

static SHARED_BUDGET: Budget = match Budget::builder().burst(2).ratio(0.0).build() {
    Ok(b) => b,
    Err(e) => panic!("{}", e.message()),
};

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", budget = SHARED_BUDGET, name = "limits::first")]
async fn first() -> Result<(), ApiError> {
    Err(ApiError::from_status(503))
}

#[llm_retry(max = 4, backoff = "fixed", delay = "10ms", jitter = "none", budget = SHARED_BUDGET, name = "limits::second")]
async fn second() -> Result<(), ApiError> {
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn fns_naming_one_budget_share_it() {
    assert!(first().await.is_err());
    assert!(second().await.is_err());
    let (a, b) = (stats("limits::first"), stats("limits::second"));
    assert_eq!((a.attempts, a.retries, a.gave_up(GiveUp::BudgetExhausted)), (3, 2, 1), "two retries, then empty");
    assert_eq!((b.attempts, b.retries, b.gave_up(GiveUp::BudgetExhausted)), (1, 0, 1), "nothing left for the second");
    assert_eq!(SHARED_BUDGET.stats().retries_denied, 2);
}

// ------------------------------------------------------------------------------------------
// limiter = PATH: a throttle arms the shared limiter.
// ------------------------------------------------------------------------------------------

mod endpoints {
    pub static OPENAI: llm_retry::Limiter = llm_retry::Limiter::new("limits::openai");
}

#[llm_retry(max = 3, backoff = "fixed", delay = "10ms", limiter = endpoints::OPENAI, name = "limits::limited")]
async fn limited(throttle: bool) -> Result<(), ApiError> {
    if throttle { Err(ApiError::from_status(429)) } else { Ok(()) }
}

#[tokio::test(start_paused = true)]
async fn a_throttle_reaches_the_limiter_named_in_the_attribute() {
    limited(false).await.unwrap();
    assert_eq!(endpoints::OPENAI.stats().throttles, 0);
    assert!(limited(true).await.is_err());
    assert_eq!(endpoints::OPENAI.stats().throttles, 3, "every 429 is reported");
    let _: &Limiter = &endpoints::OPENAI;
}

// ------------------------------------------------------------------------------------------
// adaptive = true (the fn's own window) and adaptive = PATH (a shared one).
// ------------------------------------------------------------------------------------------

static OWN_DELAYS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
fn own_delay(ev: &RetryEvent<'_, ApiError>) {
    OWN_DELAYS.lock().unwrap().push(ev.delay);
}

#[llm_retry(max = 4, backoff = "fixed", delay = "128ms", jitter = "none", adaptive = true, notify = own_delay)]
async fn own_window() -> Result<(), ApiError> {
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn adaptive_true_scales_the_delay_by_the_fns_own_errors() {
    assert!(own_window().await.is_err());
    let delays = OWN_DELAYS.lock().unwrap().clone();
    // 1, 2, 3 errors among the last 128 outcomes: 128 ms × (1 + 2 × n / 128) = 130, 132, 134 ms.
    assert_eq!(delays.len(), 3);
    for (d, ms) in delays.iter().zip([130.0, 132.0, 134.0]) {
        assert!((d.as_secs_f64() * 1000.0 - ms).abs() < 1e-3, "{delays:?}");
    }
}

static OPENAI_ERRORS: Adaptive = Adaptive::new();
static SHARED_DELAYS: Mutex<Vec<Duration>> = Mutex::new(Vec::new());
fn shared_delay(ev: &RetryEvent<'_, ApiError>) {
    SHARED_DELAYS.lock().unwrap().push(ev.delay);
}

#[llm_retry(max = 2, backoff = "fixed", delay = "128ms", jitter = "none", adaptive = OPENAI_ERRORS, notify = shared_delay)]
async fn shared_window() -> Result<(), ApiError> {
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn adaptive_path_shares_the_window_with_other_callers() {
    for _ in 0..63 {
        OPENAI_ERRORS.record_error(); // another caller's failures
    }
    assert!(shared_window().await.is_err());
    // 64 errors of 128: twice the delay.
    let delays = SHARED_DELAYS.lock().unwrap().clone();
    assert_eq!(delays.len(), 1);
    assert!((delays[0].as_secs_f64() - 0.256).abs() < 1e-6, "{delays:?}");
}

// ------------------------------------------------------------------------------------------
// tokens = EXPR: each call's cost against the limiter's tokens per minute.
// ------------------------------------------------------------------------------------------

static TPM: Limiter = match Limiter::builder("limits::tpm").tokens_per_minute(60_000.0).build() {
    Ok(c) => Limiter::from_config(c),
    Err(_) => panic!("a valid limiter"),
};

/// A rough count: a token per four characters.
fn estimate(prompt: &str) -> u64 {
    prompt.len().div_ceil(4) as u64
}

#[llm_retry(limiter = TPM, tokens = estimate(prompt), name = "limits::tokens")]
async fn costly(prompt: &str) -> Result<usize, ApiError> {
    Ok(prompt.len())
}

#[tokio::test(start_paused = true)]
async fn a_calls_declared_tokens_wait_for_room_in_the_limiters_token_bucket() {
    let prompt = "x".repeat(180_000); // 45,000 tokens
    let start = tokio::time::Instant::now();
    assert_eq!(costly(&prompt).await.unwrap(), 180_000);
    assert_eq!(start.elapsed(), Duration::ZERO, "a minute's room at first");
    assert_eq!(costly(&prompt).await.unwrap(), 180_000);
    assert_eq!(start.elapsed().as_secs(), 30, "15,000 left, then 1,000 tokens a second");
}
