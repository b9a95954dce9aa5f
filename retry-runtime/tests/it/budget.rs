//! The retry budget against a simulated provider, in paused time with seeded randomness.
//!
//! - Outage: 100% retryable failures for 60 s at 1, 10 and 100 calls a second, 4 attempts a
//!   call. Without a budget every call makes 4 attempts; with one, attempts ÷ first attempts
//!   stays at or under 1.10 at every rate.
//! - Low failure rate: at 5% failures the budget never refuses, so exactly the same calls
//!   succeed with and without it.
//! - The give-up reason shows in the site's stats (and in the tracing event: tests/events.rs).
//! - Many tasks on a multi-thread runtime and two OS threads share one budget: no update is lost.
//!
//! Prints the amplification figures quoted in docs/RELIABILITY.md:
//! `cargo test -p llm-retry-runtime --test it budget:: -- --nocapture`

use llm_retry_runtime::{ApiError, Budget, GiveUp, Policy, RetryExt, rng::seed_thread_rng, stats::Site};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const POLICY: Policy = match Policy::builder().max_attempts(4).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};

/// How a simulated call's attempts go: `fails(call, attempt)`.
type Provider = fn(u64, u64) -> bool;

fn always_fails(_: u64, _: u64) -> bool {
    true
}

/// A deterministic 5% failure rate: the same (call, attempt) fails in every run.
fn fails_5_percent(call: u64, attempt: u64) -> bool {
    let mut x = call.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ attempt.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    x % 100 < 5
}

#[derive(Debug, Default)]
struct Run {
    calls: u64,
    attempts: u64,
    successes: u64,
}

impl Run {
    fn amplification(&self) -> f64 {
        self.attempts as f64 / self.calls as f64
    }
}

/// Calls arriving for `secs` seconds at `rate` a second (Poisson arrivals from `seed`), each
/// retried under POLICY, with or without `budget`. Waits for every call to finish.
async fn simulate(rate: f64, secs: f64, seed: u64, provider: Provider, budget: Option<&'static Budget>) -> Run {
    seed_thread_rng(seed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let attempts = Arc::new(AtomicU64::new(0));
    let successes = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let mut t = 0.0;
    let mut id = 0u64;
    loop {
        t += -(1.0 - rng.random::<f64>()).ln() / rate;
        if t >= secs {
            break;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(t)).await;
        id += 1;
        let (attempts, successes) = (attempts.clone(), successes.clone());
        tasks.push(tokio::spawn(async move {
            // `budget` is an `Option<&'static Budget>`: a call takes one chosen at run time.
            let call = POLICY.call::<(), ApiError>().budget(budget);
            let mut n = 0u64;
            let out = call
                .retry(|| {
                    n += 1;
                    attempts.fetch_add(1, Relaxed);
                    let fail = provider(id, n);
                    async move { if fail { Err(ApiError::from_status(503)) } else { Ok(()) } }
                })
                .await;
            if out.is_ok() {
                successes.fetch_add(1, Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Run { calls: id, attempts: attempts.load(Relaxed), successes: successes.load(Relaxed) }
}

fn leak(b: Budget) -> &'static Budget {
    Box::leak(Box::new(b))
}

#[tokio::test(start_paused = true)]
async fn an_outage_costs_at_most_ten_percent_more_attempts_with_a_budget() {
    for rate in [1.0, 10.0, 100.0] {
        let without = simulate(rate, 60.0, 7, always_fails, None).await;
        let budget = leak(Budget::new());
        let with = simulate(rate, 60.0, 7, always_fails, Some(budget)).await;
        println!(
            "outage at {rate:>5} calls/s: {:>5} calls; amplification without budget {:.3}, with budget {:.3} ({} retries allowed, {} refused)",
            with.calls,
            without.amplification(),
            with.amplification(),
            budget.stats().retries_allowed,
            budget.stats().retries_denied,
        );
        assert!(without.amplification() > 3.5, "{without:?}");
        assert!(with.amplification() <= 1.10, "at {rate}/s: {with:?}");
        assert_eq!(with.successes, 0);
        assert_eq!(budget.stats().retries_allowed, u64::from(budget.burst()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_low_failure_rate_costs_no_availability() {
    for rate in [1.0, 10.0, 100.0] {
        let without = simulate(rate, 60.0, 11, fails_5_percent, None).await;
        let budget = leak(Budget::new());
        let with = simulate(rate, 60.0, 11, fails_5_percent, Some(budget)).await;
        println!(
            "5% failures at {rate:>5} calls/s: {} of {} calls succeed without budget, {} with; amplification {:.3}; {} retries allowed, {} refused",
            without.successes,
            without.calls,
            with.successes,
            with.amplification(),
            budget.stats().retries_allowed,
            budget.stats().retries_denied,
        );
        assert_eq!(with.calls, without.calls);
        assert_eq!(with.successes, without.successes);
        assert_eq!(with.attempts, without.attempts);
        assert_eq!(budget.stats().retries_denied, 0);
    }
}

#[test]
fn an_empty_budget_gives_up_at_once_and_says_why() {
    // The same give-up's tracing event is asserted in tests/events.rs, which has tracing's
    // process-wide callsite cache to itself (see main.rs).
    static SITE: Site = Site::new("budget::gives_up", POLICY);
    static ONE: Budget = match Budget::builder().burst(1).ratio(0.0).build() {
        Ok(b) => b,
        Err(_) => panic!(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let attempts = rt.block_on(async {
        let mut n = 0;
        let out: Result<(), ApiError> = POLICY
            .call()
            .site(&SITE)
            .budget(&ONE)
            .retry(|| {
                n += 1;
                async { Err(ApiError::from_status(503)) }
            })
            .await;
        assert!(out.is_err());
        n
    });
    assert_eq!(attempts, 2, "one retry from the budget, then it gives up");
    let stats = SITE.stats();
    assert_eq!(stats.gave_up(GiveUp::BudgetExhausted), 1);
    assert_eq!(stats.retries, 1);
    // The process-wide table has every module's sites: read this site's row only.
    let table = llm_retry_runtime::stats().to_string();
    let row = table.lines().find(|l| l.starts_with("budget::gives_up ")).expect("the site's row");
    assert!(row.contains("budget exhausted: 1"), "{row}");
}

#[test]
fn no_update_is_lost_under_contention() {
    static SHARED: Budget = match Budget::builder().burst(1000).ratio(0.1).build() {
        Ok(b) => b,
        Err(_) => panic!(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    // 64 tasks and 2 OS threads try 4,000 withdrawals from 1,000 tokens: exactly 1,000 succeed.
    let withdraw = |n: usize| (0..n).filter(|_| SHARED.withdraw()).count();
    let tasks: Vec<_> = (0..64).map(|_| rt.spawn(async move { withdraw(50) })).collect();
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(move || withdraw(400))).collect();
    let mut allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    allowed += rt.block_on(async {
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        sum
    });
    assert_eq!(allowed, 1000);
    assert_eq!(SHARED.stats().retries_allowed, 1000);
    assert_eq!(SHARED.stats().retries_denied, 4000 - 1000);
    // 5,000 concurrent deposits of 0.1: exactly 500 tokens (below the burst, so none capped).
    let deposit = |n: usize| (0..n).for_each(|_| SHARED.deposit());
    let tasks: Vec<_> = (0..64).map(|_| rt.spawn(async move { deposit(50) })).collect();
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(move || deposit(900))).collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(SHARED.tokens(), 500.0);
}
