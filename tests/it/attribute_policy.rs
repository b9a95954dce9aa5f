//! The attribute's `policy = PATH` key: the policy is loaded at startup into a `static
//! PolicySlot`, and the annotated fn obeys it (its attempts, its backoff, its retryable set),
//! not the attribute's defaults; the call's own options still apply.

use llm_retry::config::PolicySlot;
use llm_retry::{ApiError, GiveUp, Policy, llm_retry};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

fn stats(site: &str) -> llm_retry::stats::SiteStats {
    llm_retry::stats().get(site).unwrap_or_default()
}

/// What configuration would hold: 2 attempts, a fixed 700 ms, no jitter.
fn loaded() -> Policy {
    let text = "max = 2\nbackoff = \"fixed\"\ndelay = \"700ms\"\njitter = \"none\"";
    #[cfg(feature = "serde")]
    let policy = llm_retry::config::from_toml_str(text).expect("a valid policy").policy;
    #[cfg(not(feature = "serde"))]
    let policy = {
        let _ = text;
        Policy::builder()
            .max_attempts(2)
            .backoff(llm_retry::Backoff::Fixed { delay: Duration::from_millis(700) })
            .jitter(llm_retry::Jitter::None)
            .build()
            .expect("a valid policy")
    };
    policy
}

static CHAT_POLICY: PolicySlot = PolicySlot::new("it::chat_policy", Policy::DEFAULT);
static CHAT_CALLS: AtomicU32 = AtomicU32::new(0);

#[llm_retry(policy = CHAT_POLICY, name = "policy::chat")]
async fn chat() -> Result<(), ApiError> {
    CHAT_CALLS.fetch_add(1, Relaxed);
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn an_annotated_fn_obeys_the_policy_loaded_at_startup() {
    CHAT_POLICY.set(loaded()).unwrap();
    let start = Instant::now();
    assert!(chat().await.is_err());
    assert_eq!(CHAT_CALLS.load(Relaxed), 2, "the loaded max, not the default 4");
    assert_eq!(start.elapsed(), Duration::from_millis(700), "the loaded fixed delay");
    let s = stats("policy::chat");
    assert_eq!((s.calls, s.attempts, s.retries, s.gave_up(GiveUp::Exhausted)), (1, 2, 1, 1));
}

static UNSET_POLICY: PolicySlot = PolicySlot::new(
    "it::unset_policy",
    match Policy::builder().max_attempts(3).backoff(llm_retry::Backoff::None).build() {
        Ok(p) => p,
        Err(_) => panic!("a valid fallback"),
    },
);
static UNSET_CALLS: AtomicU32 = AtomicU32::new(0);

#[llm_retry(policy = UNSET_POLICY, deadline = "10s")]
async fn unset() -> Result<(), ApiError> {
    UNSET_CALLS.fetch_add(1, Relaxed);
    Err(ApiError::from_status(429))
}

#[tokio::test(start_paused = true)]
async fn until_it_is_set_the_fallback_decides() {
    assert!(unset().await.is_err());
    assert_eq!(UNSET_CALLS.load(Relaxed), 3, "the slot's fallback: 3 attempts");
}

static STRICT_POLICY: PolicySlot = PolicySlot::new("it::strict_policy", Policy::DEFAULT);
static STRICT_CALLS: AtomicU32 = AtomicU32::new(0);

#[llm_retry(policy = STRICT_POLICY, deadline = "1s")]
async fn strict() -> Result<(), ApiError> {
    STRICT_CALLS.fetch_add(1, Relaxed);
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn the_calls_own_deadline_applies_under_a_loaded_policy() {
    // 10 attempts 400 ms apart, but the attribute's deadline of 1 s ends the call first.
    let policy = Policy::builder()
        .max_attempts(10)
        .backoff(llm_retry::Backoff::Fixed { delay: Duration::from_millis(400) })
        .jitter(llm_retry::Jitter::None)
        .build()
        .unwrap();
    STRICT_POLICY.set(policy).unwrap();
    let start = Instant::now();
    assert!(strict().await.is_err());
    assert_eq!(STRICT_CALLS.load(Relaxed), 3, "attempts at 0, 400 and 800 ms; the next would cross 1 s");
    assert!(start.elapsed() <= Duration::from_secs(1));
}

// A budget built at startup from configuration lives in a `static OnceLock`: absent until set.
static LOADED_BUDGET: std::sync::OnceLock<llm_retry::Budget> = std::sync::OnceLock::new();
static BUDGETED_CALLS: AtomicU32 = AtomicU32::new(0);

#[llm_retry(max = 4, backoff = "none", budget = LOADED_BUDGET, name = "policy::budgeted")]
async fn budgeted() -> Result<(), ApiError> {
    BUDGETED_CALLS.fetch_add(1, Relaxed);
    Err(ApiError::from_status(503))
}

#[tokio::test(start_paused = true)]
async fn a_budget_in_a_once_lock_applies_once_it_is_set() {
    assert!(budgeted().await.is_err());
    assert_eq!(BUDGETED_CALLS.load(Relaxed), 4, "no budget yet: every attempt");
    let budget = llm_retry::Budget::builder().burst(1).ratio(0.0).build().unwrap();
    assert!(LOADED_BUDGET.set(budget).is_ok());
    assert!(budgeted().await.is_err());
    assert_eq!(BUDGETED_CALLS.load(Relaxed), 4 + 2, "one retry in the budget, then denied");
    assert_eq!(stats("policy::budgeted").gave_up(GiveUp::BudgetExhausted), 1);
}
