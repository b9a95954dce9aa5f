//! Scenario B's clients: the strategies (backoffs, Retry-After handling, the batch, the
//! endpoint's pacer with and without the provider's headers and token costs, the budget)
//! that send an LLM batch to the rate-limited provider, and one run.

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
    /// `Policy::batch`, paced by a limiter of its own.
    Batch,
    /// Each call through one shared `Limiter` (the endpoint's pacer), learning from 429s.
    Limiter,
    /// Each call spending from one shared `Budget::new()`.
    Budget,
    /// Half the tasks in a `Policy::batch` on the endpoint's limiter, half as single calls
    /// through it: one pacer for both.
    Mixed,
    /// Each call through the limiter, which observes the provider's rate-limit headers on
    /// every response (what `send_observed` does).
    Headers,
    /// Each call declares its prompt's tokens (`Call::tokens`) to a limiter configured with
    /// the provider's `tokens_per_minute` (token-bound variant only).
    Tokens,
    /// Each call declares its tokens and the limiter observes the headers, which give it both
    /// rates (token-bound variant only).
    HeadersTokens,
}

impl LlmStrategy {
    /// Every strategy, in table order.
    pub const ALL: [LlmStrategy; 15] = [
        LlmStrategy::NoBackoff,
        LlmStrategy::Exponential,
        LlmStrategy::Full,
        LlmStrategy::Equal,
        LlmStrategy::Decorrelated,
        LlmStrategy::ExactRetryAfter,
        LlmStrategy::RetryAfterJitter,
        LlmStrategy::Default,
        LlmStrategy::Batch,
        LlmStrategy::Limiter,
        LlmStrategy::Budget,
        LlmStrategy::Mixed,
        LlmStrategy::Headers,
        LlmStrategy::Tokens,
        LlmStrategy::HeadersTokens,
    ];

    /// Whether the strategy runs on `cfg`: the token strategies on the token-bound variant
    /// only, which runs only the Retry-After baseline and the pacer's strategies.
    pub fn runs_on(self, cfg: &LlmConfig) -> bool {
        match self {
            LlmStrategy::Tokens | LlmStrategy::HeadersTokens => cfg.tokens.is_some(),
            LlmStrategy::RetryAfterJitter
            | LlmStrategy::Batch
            | LlmStrategy::Limiter
            | LlmStrategy::Mixed
            | LlmStrategy::Headers => true,
            _ => cfg.tokens.is_none(),
        }
    }

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
            LlmStrategy::Batch => "batch (its own pacer)",
            LlmStrategy::Limiter => "pacer (Limiter)",
            LlmStrategy::Budget => "retry budget",
            LlmStrategy::Mixed => "batch + calls, one pacer",
            LlmStrategy::Headers => "pacer + headers",
            LlmStrategy::Tokens => "pacer + tokens (configured)",
            LlmStrategy::HeadersTokens => "pacer + tokens + headers",
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
            | LlmStrategy::Batch
            | LlmStrategy::Limiter
            | LlmStrategy::Budget
            | LlmStrategy::Mixed
            | LlmStrategy::Headers
            | LlmStrategy::Tokens
            | LlmStrategy::HeadersTokens => build(unlimited),
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
    /// The floor of this run (the token-bound variant's depends on its prompts).
    pub floor: f64,
}

/// One call of `strategy` for task `task` that ends when the policy returns.
async fn llm_call(
    strategy: LlmStrategy,
    policy: &Policy,
    provider: &Provider,
    task: usize,
    limiter: &'static Limiter,
    budget: &'static Budget,
) -> Result<(), Throttled> {
    let attempt = || provider.request(task, None);
    let tokens = provider.sizes.get(task).copied().unwrap_or(0);
    match strategy {
        LlmStrategy::ExactRetryAfter => {
            let mut call = policy.call::<(), Throttled>();
            loop {
                call.start_attempt();
                let out = provider.request(task, None).await;
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
        LlmStrategy::Limiter | LlmStrategy::Mixed => policy.call().limiter(limiter).retry(attempt).await,
        LlmStrategy::Headers => policy.call().limiter(limiter).retry(|| provider.request(task, Some(limiter))).await,
        LlmStrategy::Tokens => policy.call().limiter(limiter).tokens(tokens).retry(attempt).await,
        LlmStrategy::HeadersTokens => {
            policy.call().limiter(limiter).tokens(tokens).retry(|| provider.request(task, Some(limiter))).await
        }
        LlmStrategy::Budget => policy.call().budget(budget).retry(attempt).await,
        _ => policy.call().retry(attempt).await,
    }
}

/// The endpoint's limiter for a run of `strategy`: configured with the provider's tokens per
/// minute for `Tokens`, the defaults otherwise.
fn limiter_for(strategy: LlmStrategy, cfg: &LlmConfig) -> Limiter {
    match (strategy, cfg.tokens) {
        (LlmStrategy::Tokens, Some(t)) => Limiter::from_config(
            Limiter::builder("simulated-provider").tokens_per_minute(t.per_minute).build().expect("a valid limiter"),
        ),
        _ => Limiter::new("simulated-provider"),
    }
}

/// One run of the batch under `strategy`.
pub fn llm_run(strategy: LlmStrategy, cfg: LlmConfig, seed: u64) -> LlmRun {
    // One limiter and one budget per run, as a process would declare them `static`; leaked
    // because the engine takes them as `&'static` (a few hundred bytes per run).
    let limiter: &'static Limiter = Box::leak(Box::new(limiter_for(strategy, &cfg)));
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
        let (policy, provider) = (&policy, &provider);
        if strategy == LlmStrategy::Batch {
            let batch = policy.batch().concurrency(k).build().expect("a valid batch");
            let mut results = batch.stream(0..cfg.tasks, |task| provider.request(task, None));
            while let Some(r) = results.next().await {
                finish(r.is_ok());
            }
        } else if strategy == LlmStrategy::Mixed {
            // The even tasks in a batch on the endpoint's limiter, the odd ones as single calls
            // through it, each with half the concurrency.
            let half = k.div_ceil(2);
            let batch = policy.batch().concurrency(half).limiter(limiter).build().expect("a valid batch");
            let batched =
                batch.stream((0..cfg.tasks).step_by(2), |task| provider.request(task, None)).map(|r| r.is_ok());
            let single = stream::iter((1..cfg.tasks).step_by(2))
                .map(|task| llm_call(strategy, policy, provider, task, limiter, budget))
                .buffer_unordered(half)
                .map(|r| r.is_ok());
            let mut results = stream::select(batched, single);
            while let Some(ok) = results.next().await {
                finish(ok);
            }
        } else {
            let mut results = stream::iter(0..cfg.tasks)
                .map(|task| llm_call(strategy, policy, provider, task, limiter, budget))
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
            floor: cfg.floor(seed),
        }
    })
}
