//! Scenario B's clients: the strategies (backoffs, Retry-After handling, the batch, the
//! endpoint's pacer with and without the provider's headers and token costs, the budget)
//! that send an LLM batch to the rate-limited provider, and one run.

use super::provider::{LlmConfig, Provider, Throttled};
use super::{build, paused, quantile};
use futures::stream::{self, StreamExt};
use llm_retry::{Backoff, Budget, Jitter, Limiter, Policy, RetryExt, call::DelaySource};
use std::cell::Cell;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};
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
    /// Not a product: a client that knows the provider's buckets exactly (their rates, their
    /// size, that they start full) and sends each request at the instant its token (and its
    /// prompt's tokens) is made. It measures what any client can reach: the makespan floor
    /// counts the median service time, not the service times of the last requests.
    Oracle,
}

impl LlmStrategy {
    /// Every strategy, in table order.
    pub const ALL: [LlmStrategy; 16] = [
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
        LlmStrategy::Oracle,
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
            | LlmStrategy::Headers
            | LlmStrategy::Oracle => true,
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
            LlmStrategy::Oracle => "oracle (knows the buckets)",
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
            | LlmStrategy::HeadersTokens
            | LlmStrategy::Oracle => build(unlimited),
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
    oracle: &Oracle,
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
        LlmStrategy::Oracle => {
            // Its slot is taken when the task starts, so slots go in the order tasks ask.
            let slot = oracle.slot(tokens);
            policy
                .call()
                .retry(|| async move {
                    // A timer due now would still wait for the next tick.
                    if Instant::now() < slot {
                        tokio::time::sleep_until(slot).await;
                    }
                    provider.request(task, None).await
                })
                .await
        }
        _ => policy.call().retry(attempt).await,
    }
}

/// The oracle's schedule: a replica of the provider's buckets (full at t = 0), which takes
/// each request's token (and, token-bound, its prompt's tokens) in the order the tasks ask, at
/// the first tick of tokio's 1 ms timer when they are there.
struct Oracle {
    cfg: LlmConfig,
    start: Instant,
    /// The replica: when it last took a request (seconds from the start), the request tokens
    /// and the prompt tokens left then.
    at: Cell<f64>,
    requests: Cell<f64>,
    room: Cell<f64>,
}

impl Oracle {
    fn new(cfg: LlmConfig, start: Instant) -> Oracle {
        let room = cfg.tokens.map_or(0.0, |t| t.per_minute);
        Oracle { cfg, start, at: Cell::new(0.0), requests: Cell::new(cfg.burst), room: Cell::new(room) }
    }

    /// When the next request (of `cost` tokens) may go, and takes its tokens from the replica.
    fn slot(&self, cost: u64) -> Instant {
        let from = self.at.get().max(self.start.elapsed().as_secs_f64());
        let token_rate = self.cfg.tokens.map_or(1.0, |t| t.per_minute / 60.0);
        let fill = |at: f64| {
            let dt = at - self.at.get();
            let requests = (self.requests.get() + dt * self.cfg.rate).min(self.cfg.burst);
            let room = self.cfg.tokens.map_or(0.0, |t| (self.room.get() + dt * token_rate).min(t.per_minute));
            (requests, room)
        };
        let cost = if self.cfg.tokens.is_some() { cost as f64 } else { 0.0 };
        let (requests, room) = fill(from);
        let wait = ((1.0 - requests) / self.cfg.rate).max((cost - room) / token_rate).max(0.0);
        // The first whole millisecond at or after it (a rounding error of the sums aside): the
        // provider lets in a request that comes as its token is made.
        let ms = ((from + wait) * 1000.0 - 1e-6).ceil().max(0.0) as u64;
        let at = ms as f64 / 1000.0;
        let (requests, room) = fill(at);
        self.at.set(at);
        self.requests.set(requests - 1.0);
        self.room.set(room - cost);
        self.start + Duration::from_millis(ms)
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
        let oracle = &Oracle::new(cfg, start);
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
                .map(|task| llm_call(strategy, policy, provider, task, limiter, budget, oracle))
                .buffer_unordered(half)
                .map(|r| r.is_ok());
            let mut results = stream::select(batched, single);
            while let Some(ok) = results.next().await {
                finish(ok);
            }
        } else {
            let mut results = stream::iter(0..cfg.tasks)
                .map(|task| llm_call(strategy, policy, provider, task, limiter, budget, oracle))
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
