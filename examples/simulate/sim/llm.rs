//! Scenario B's clients: the strategies (backoffs, Retry-After handling, the batch gate, the
//! limiter, the budget) that send an LLM batch to the rate-limited provider, and one run.

use super::provider::{LlmConfig, Provider, Throttled};
use super::{build, paused, quantile};
use futures::stream::{self, StreamExt};
use llm_retry::{Backoff, Budget, Jitter, Limiter, Policy, RetryExt, call::DelaySource};
use std::ops::ControlFlow;
use std::time::SystemTime;
use tokio::time::{Instant, sleep};

/// Client strategies against the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmStrategy {
    /// Retry at once, ignoring Retry-After.
    NoBackoff,
    /// Exponential backoff (500 ms doubling to 20 s), no jitter, ignoring Retry-After.
    Exponential,
    /// The same with full jitter.
    Full,
    /// The same with equal jitter.
    Equal,
    /// Decorrelated jitter (500 ms to 20 s), ignoring Retry-After.
    Decorrelated,
    /// Sleep exactly the Retry-After: the engine decides, the loop sleeps the bare hint.
    ExactRetryAfter,
    /// Retry-After plus the engine's small jitter (the default Retry-After handling).
    RetryAfterJitter,
    /// `Policy::DEFAULT` as shipped: 4 attempts.
    Default,
    /// `Policy::batch` with the shared 429 gate.
    BatchGate,
    /// Each call through one shared adaptive `Limiter`.
    Limiter,
    /// Each call spending from one shared `Budget::new()`.
    Budget,
    /// `Policy::batch` with the shared gate, each attempt also through one shared `Limiter`
    /// (composed by hand: the op acquires a token and reports the response).
    BatchLimiter,
}

impl LlmStrategy {
    /// Every strategy, in table order.
    pub const ALL: [LlmStrategy; 12] = [
        LlmStrategy::NoBackoff,
        LlmStrategy::Exponential,
        LlmStrategy::Full,
        LlmStrategy::Equal,
        LlmStrategy::Decorrelated,
        LlmStrategy::ExactRetryAfter,
        LlmStrategy::RetryAfterJitter,
        LlmStrategy::Default,
        LlmStrategy::BatchGate,
        LlmStrategy::Limiter,
        LlmStrategy::Budget,
        LlmStrategy::BatchLimiter,
    ];

    /// The name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            LlmStrategy::NoBackoff => "no backoff",
            LlmStrategy::Exponential => "exponential",
            LlmStrategy::Full => "full jitter",
            LlmStrategy::Equal => "equal jitter",
            LlmStrategy::Decorrelated => "decorrelated",
            LlmStrategy::ExactRetryAfter => "exact Retry-After",
            LlmStrategy::RetryAfterJitter => "Retry-After + jitter",
            LlmStrategy::Default => "Policy::DEFAULT",
            LlmStrategy::BatchGate => "batch, shared gate",
            LlmStrategy::Limiter => "adaptive limiter",
            LlmStrategy::Budget => "retry budget",
            LlmStrategy::BatchLimiter => "batch gate + limiter",
        }
    }

    /// The policy. All but `Default` make unlimited attempts (`u32::MAX`) and wait for any
    /// Retry-After up to the default 120 s, so that a herd shows up as calls, not as
    /// abandoned tasks.
    pub fn policy(self) -> Policy {
        let unlimited = Policy::builder().max_attempts(u32::MAX);
        let backoff_only = unlimited.respect_retry_after(false);
        match self {
            LlmStrategy::NoBackoff => build(backoff_only.backoff(Backoff::None).jitter(Jitter::None)),
            LlmStrategy::Exponential => build(backoff_only.backoff(Backoff::DEFAULT_EXPONENTIAL).jitter(Jitter::None)),
            LlmStrategy::Full => build(backoff_only.backoff(Backoff::DEFAULT_EXPONENTIAL).jitter(Jitter::Full)),
            LlmStrategy::Equal => build(backoff_only.backoff(Backoff::DEFAULT_EXPONENTIAL).jitter(Jitter::Equal)),
            LlmStrategy::Decorrelated => {
                build(backoff_only.backoff(Backoff::DEFAULT_DECORRELATED).jitter(Jitter::Decorrelated))
            }
            LlmStrategy::Default => Policy::DEFAULT,
            LlmStrategy::ExactRetryAfter
            | LlmStrategy::RetryAfterJitter
            | LlmStrategy::BatchGate
            | LlmStrategy::Limiter
            | LlmStrategy::Budget
            | LlmStrategy::BatchLimiter => build(unlimited),
        }
    }
}

/// The totals of one batch run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlmRun {
    /// Requests the provider saw.
    pub calls: u64,
    /// 429s it sent.
    pub throttled: u64,
    /// Tasks whose call gave up.
    pub abandoned: u64,
    /// Seconds until the last task finished.
    pub makespan: f64,
    /// Median task latency (from release at t = 0), seconds.
    pub p50: f64,
    /// 99th percentile task latency, seconds.
    pub p99: f64,
}

/// One call of `strategy` that ends when the policy returns.
async fn llm_call(
    strategy: LlmStrategy,
    policy: &Policy,
    provider: &Provider,
    limiter: &'static Limiter,
    budget: &'static Budget,
) -> Result<(), Throttled> {
    let attempt = || provider.request();
    match strategy {
        LlmStrategy::ExactRetryAfter => {
            let mut call = policy.call::<(), Throttled>();
            loop {
                call.start_attempt();
                let out = provider.request().await;
                let hint = out.as_ref().err().and_then(|t| t.0).and_then(|h| h.resolve(SystemTime::UNIX_EPOCH));
                match call.settle(out, None) {
                    ControlFlow::Break(out) => return out,
                    ControlFlow::Continue(plan) => {
                        // The engine's plan is the hint plus its jitter; sleep the bare hint.
                        let delay = match (plan.source, hint) {
                            (DelaySource::RetryAfter, Some(h)) => h,
                            _ => plan.delay,
                        };
                        sleep(delay).await;
                    }
                }
            }
        }
        LlmStrategy::Limiter => policy.call().limiter(limiter).retry(attempt).await,
        LlmStrategy::Budget => policy.call().budget(budget).retry(attempt).await,
        _ => policy.call().retry(attempt).await,
    }
}

/// One run of the batch under `strategy`.
pub fn llm_run(strategy: LlmStrategy, cfg: LlmConfig, seed: u64) -> LlmRun {
    // One limiter and one budget per run, as a process would declare them `static`; leaked
    // because the engine takes them as `&'static` (a few hundred bytes per run).
    let limiter: &'static Limiter = Box::leak(Box::new(Limiter::new("simulated-provider")));
    let budget: &'static Budget = Box::leak(Box::new(Budget::new()));
    paused(seed, async move {
        let policy = strategy.policy();
        let provider = Provider::new(cfg, seed);
        let k = cfg.concurrency.unwrap_or(cfg.tasks).max(1);
        let start = Instant::now();
        let mut done = Vec::with_capacity(cfg.tasks);
        let mut abandoned = 0;
        let mut finish = |ok: bool| {
            done.push(start.elapsed().as_secs_f64());
            abandoned += u64::from(!ok);
        };
        if strategy == LlmStrategy::BatchGate {
            let batch = policy.batch().concurrency(k).build().expect("a valid batch");
            let mut results = batch.stream(0..cfg.tasks, |_| provider.request());
            while let Some(r) = results.next().await {
                finish(r.is_ok());
            }
        } else if strategy == LlmStrategy::BatchLimiter {
            let batch = policy.batch().concurrency(k).build().expect("a valid batch");
            let provider = &provider;
            let mut results = batch.stream(0..cfg.tasks, |_| async move {
                limiter.acquire().await;
                let out = provider.request().await;
                limiter.record(out.is_err());
                out
            });
            while let Some(r) = results.next().await {
                finish(r.is_ok());
            }
        } else {
            let (policy, provider) = (&policy, &provider);
            let mut results = stream::iter(0..cfg.tasks)
                .map(|_| llm_call(strategy, policy, provider, limiter, budget))
                .buffer_unordered(k);
            while let Some(r) = results.next().await {
                finish(r.is_ok());
            }
        }
        let makespan = start.elapsed().as_secs_f64();
        LlmRun {
            calls: provider.calls.get(),
            throttled: provider.throttled.get(),
            abandoned,
            makespan,
            p50: quantile(&mut done, 0.5),
            p99: quantile(&mut done, 0.99),
        }
    })
}
