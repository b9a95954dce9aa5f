//! The herd simulator's models (issue #8), shared by `examples/simulate.rs` and
//! `tests/simulation_smoke.rs`.
//!
//! Every client here is the project's real retry code: a [`Policy`] driven through
//! [`Policy::call`] (or [`Call::settle`](llm_retry::Call::settle) where a loop sleeps itself),
//! a [`Batch`](llm_retry::Batch), a [`Limiter`] or a [`Budget`]. Only the *servers* are models:
//! async fns that sleep on tokio's clock. Each run gets its own current-thread runtime with a
//! paused clock, so an hour of simulated traffic takes as long as its events take to process,
//! and the engine's jitter generator and the model's own generator are both seeded: a run is
//! a pure function of its seed.

use futures::stream::{self, FuturesUnordered, StreamExt};
use llm_retry::{
    Backoff, Budget, Classification, Classify, DelaySource, ErrorKind, Jitter, Limiter, Policy, PolicyBuilder,
    RetryAfter, RetryExt, RetryOn,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};
use tokio::time::{Instant, sleep, sleep_until};

/// Runs `fut` to completion on a fresh current-thread runtime whose clock starts paused (it
/// jumps to the next timer whenever every task is idle), with the engine's jitter generator
/// on this thread seeded with `seed`.
pub fn paused<F: Future>(seed: u64, fut: F) -> F::Output {
    llm_retry::seed_thread_rng(seed);
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
        .block_on(fut)
}

/// The model's own generator for run `seed` (network hops, service times, arrivals), kept
/// apart from the engine's so that the two streams do not shift each other.
fn model_rng(seed: u64) -> RefCell<SmallRng> {
    RefCell::new(SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15))
}

/// A policy from a builder that the simulator knows is valid.
fn build(b: PolicyBuilder) -> Policy {
    b.build().unwrap_or_else(|e| panic!("simulator policy: {e}"))
}

/// The value at quantile `q` of `v` (nearest rank); 0 for an empty slice.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The mean of `v`; 0 for an empty iterator.
pub fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = v.into_iter().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

// ------------------------------------------------------------------------------------------
// A. The AWS "Exponential Backoff And Jitter" experiment: optimistic concurrency on one row.
// ------------------------------------------------------------------------------------------

/// tokio's timer wheel has a resolution of 1 ms, and the OCC model's events are a few
/// milliseconds apart, so ties (a read and a write in the same tick) would decide the
/// contention. Scenario A therefore runs on a stretched clock: one model millisecond is
/// `OCC_SCALE` tokio milliseconds. The backoff parameters are stretched by the same factor;
/// every formula involved (exponential, full, equal, decorrelated) is linear in its durations,
/// so the delays are exactly the model's, and ticks become microseconds of model time.
pub const OCC_SCALE: f64 = 1000.0;

/// A model duration in milliseconds, on the stretched clock.
fn occ_ms(ms: f64) -> Duration {
    Duration::from_secs_f64(ms * OCC_SCALE / 1000.0)
}

/// The backoff strategies of the AWS post, each one a real [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccStrategy {
    /// Retry at once.
    None,
    /// Exponential, no jitter.
    Exponential,
    /// Exponential with full jitter.
    Full,
    /// Exponential with equal jitter.
    Equal,
    /// Decorrelated jitter.
    Decorrelated,
}

impl OccStrategy {
    /// Every strategy, in the post's order.
    pub const ALL: [OccStrategy; 5] =
        [OccStrategy::None, OccStrategy::Exponential, OccStrategy::Equal, OccStrategy::Full, OccStrategy::Decorrelated];

    /// The name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            OccStrategy::None => "no backoff",
            OccStrategy::Exponential => "exponential",
            OccStrategy::Equal => "equal jitter",
            OccStrategy::Full => "full jitter",
            OccStrategy::Decorrelated => "decorrelated",
        }
    }

    /// The published simulator's result at N = 100, rerun: (mean ms, mean writes).
    pub fn aws_reference(self) -> (f64, f64) {
        match self {
            OccStrategy::None => (2029.0, 2424.0),
            OccStrategy::Exponential => (63227.0, 1851.0),
            OccStrategy::Equal => (6575.0, 813.0),
            OccStrategy::Full => (4902.0, 796.0),
            OccStrategy::Decorrelated => (4680.0, 1000.0),
        }
    }

    /// The policy: base 5 ms, cap 2 s, unlimited attempts, conflicts retried.
    ///
    /// The AWS simulator sleeps `min(cap, base·2ⁿ)` before retry `n` counting from 1, so its
    /// first exponential delay is 10 ms: `initial` is `2·base`. Decorrelated draws
    /// `U(base, 3·previous)` from `previous = base`, as ours does.
    pub fn policy(self) -> Policy {
        let exponential = Backoff::Exponential {
            initial: occ_ms(10.0),
            multiplier: 2.0,
            min_delay: Duration::ZERO,
            max_delay: occ_ms(2000.0),
        };
        let (backoff, jitter) = match self {
            OccStrategy::None => (Backoff::None, Jitter::None),
            OccStrategy::Exponential => (exponential, Jitter::None),
            OccStrategy::Full => (exponential, Jitter::Full),
            OccStrategy::Equal => (exponential, Jitter::Equal),
            OccStrategy::Decorrelated => {
                (Backoff::Decorrelated { base: occ_ms(5.0), max_delay: occ_ms(2000.0) }, Jitter::Decorrelated)
            }
        };
        build(
            Policy::builder()
                .max_attempts(u32::MAX)
                .retry_on(RetryOn::none().kind(ErrorKind::Conflict))
                .backoff(backoff)
                .jitter(jitter),
        )
    }
}

/// The write lost the race: another client wrote between this client's read and its write.
#[derive(Debug)]
pub struct Conflict;

impl Classify for Conflict {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Conflict).with_status(409)
    }
}

/// The totals of one OCC run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OccRun {
    /// Write attempts (the AWS post's "work": one call is one read plus one write).
    pub calls: u64,
    /// Model milliseconds until the last client's write succeeded.
    pub time_ms: f64,
}

/// One run of the OCC experiment: `clients` clients each update the row once.
pub fn occ_run(strategy: OccStrategy, clients: usize, seed: u64) -> OccRun {
    paused(seed, async move {
        let policy = strategy.policy();
        let version = Cell::new(0u64);
        let writes = Cell::new(0u64);
        let rng = model_rng(seed);
        let hop_ms = Normal::<f64>::new(10.0, 2.0).expect("a valid normal");
        // |Normal(10 ms, 2 ms)| per network hop, as in the AWS model.
        let hop = || occ_ms(hop_ms.sample(&mut *rng.borrow_mut()).abs());
        let (version, writes, hop) = (&version, &writes, &hop);
        let attempt = move || async move {
            sleep(hop()).await; // the read request reaches the row
            let seen = version.get();
            sleep(hop() + hop()).await; // the version travels back; the write travels out
            writes.set(writes.get() + 1);
            let won = version.get() == seen;
            if won {
                version.set(seen + 1);
            }
            sleep(hop()).await; // the verdict travels back
            if won { Ok(()) } else { Err(Conflict) }
        };
        let start = Instant::now();
        let policy = &policy;
        let mut clients: FuturesUnordered<_> =
            (0..clients).map(|_| async move { policy.call::<(), Conflict>().retry(attempt).await }).collect();
        while let Some(out) = clients.next().await {
            out.expect("unlimited attempts end in a write");
        }
        OccRun { calls: writes.get(), time_ms: start.elapsed().as_secs_f64() * 1000.0 / OCC_SCALE }
    })
}

// ------------------------------------------------------------------------------------------
// B. An LLM batch against a rate-limited provider.
// ------------------------------------------------------------------------------------------

/// How the provider writes its Retry-After.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// `retry-after: <whole seconds>`, rounded up, at least 1.
    Seconds,
    /// `retry-after-ms: <milliseconds>`, rounded up, at least 1.
    Millis,
}

impl Hint {
    /// The name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Hint::Seconds => "retry-after (s)",
            Hint::Millis => "retry-after-ms",
        }
    }

    /// The header the provider sends for a token `wait` away, parsed by the runtime's own
    /// header parsers, as a client would receive it.
    fn header(self, wait: f64) -> Option<RetryAfter> {
        match self {
            Hint::Seconds => {
                let text = format!("{}", wait.ceil().max(1.0));
                RetryAfter::parse_retry_after(&text, SystemTime::UNIX_EPOCH)
            }
            Hint::Millis => RetryAfter::parse_retry_after_ms(&format!("{}", (wait * 1000.0).ceil().max(1.0))),
        }
    }
}

/// The rate-limited provider and the batch: `tasks` requests released at t = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LlmConfig {
    /// N: requests in the batch.
    pub tasks: usize,
    /// K: the client's concurrency; `None` for unbounded.
    pub concurrency: Option<usize>,
    /// C: the token bucket's rate, requests per second.
    pub rate: f64,
    /// B: the bucket's size (it starts full).
    pub burst: f64,
    /// S: the median service time of a success (log-normal).
    pub median: Duration,
    /// σ of the log-normal service time.
    pub sigma: f64,
    /// The Retry-After variant of the provider's 429s.
    pub hint: Hint,
}

/// How long a 429 takes to come back.
pub const THROTTLE_LATENCY: Duration = Duration::from_millis(50);

impl LlmConfig {
    /// The configuration of the issue: C = 10/s, B = 10, S = 2 s with σ = 0.5.
    pub fn new(tasks: usize, concurrency: Option<usize>, hint: Hint) -> LlmConfig {
        LlmConfig { tasks, concurrency, rate: 10.0, burst: 10.0, median: Duration::from_secs(2), sigma: 0.5, hint }
    }

    /// The least makespan any client could reach: `max((N − B)/C + S, N·S/K)`.
    pub fn floor(&self) -> f64 {
        let n = self.tasks as f64;
        let s = self.median.as_secs_f64();
        let limited = (n - self.burst).max(0.0) / self.rate + s;
        let bounded = self.concurrency.map_or(0.0, |k| n * s / k as f64);
        limited.max(bounded)
    }
}

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

/// A 429 from the provider, with the Retry-After it sent (if the header parsed).
#[derive(Debug)]
pub struct Throttled(Option<RetryAfter>);

impl Classify for Throttled {
    fn classify(&self) -> Classification {
        let c = Classification::new(ErrorKind::RateLimited).with_status(429);
        match self.0 {
            Some(hint) => c.with_retry_after(hint),
            None => c,
        }
    }
}

/// The provider: a token bucket in front of a service with log-normal latency.
struct Provider {
    cfg: LlmConfig,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    calls: Cell<u64>,
    throttled: Cell<u64>,
    rng: RefCell<SmallRng>,
    service: LogNormal<f64>,
}

impl Provider {
    fn new(cfg: LlmConfig, seed: u64) -> Provider {
        Provider {
            cfg,
            tokens: Cell::new(cfg.burst),
            refilled: Cell::new(Instant::now()),
            calls: Cell::new(0),
            throttled: Cell::new(0),
            rng: model_rng(seed),
            service: LogNormal::new(cfg.median.as_secs_f64().ln(), cfg.sigma).expect("a valid log-normal"),
        }
    }

    /// One request: a token and a success after the service time, or a 429 after 50 ms
    /// saying how long until the next token.
    async fn request(&self) -> Result<(), Throttled> {
        self.calls.set(self.calls.get() + 1);
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.refilled.get()).as_secs_f64();
        let tokens = (self.tokens.get() + dt * self.cfg.rate).min(self.cfg.burst);
        self.refilled.set(now);
        if tokens >= 1.0 {
            self.tokens.set(tokens - 1.0);
            let s = self.service.sample(&mut *self.rng.borrow_mut());
            sleep(Duration::from_secs_f64(s)).await;
            Ok(())
        } else {
            self.tokens.set(tokens);
            self.throttled.set(self.throttled.get() + 1);
            let hint = self.cfg.hint.header((1.0 - tokens) / self.cfg.rate);
            sleep(THROTTLE_LATENCY).await;
            Err(Throttled(hint))
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

// ------------------------------------------------------------------------------------------
// C. Outage and partial failure: open-loop Poisson traffic, Policy::DEFAULT (3 retries).
// ------------------------------------------------------------------------------------------

/// What stands between a failed attempt and its retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guard {
    /// Nothing: every call retries up to the policy's limit.
    NoBudget,
    /// Our [`Budget`] with the given ratio and burst (`Budget::new()` is 0.1 and 5).
    Budget {
        /// Retry tokens a success earns.
        ratio: f64,
        /// Retries held in reserve.
        burst: u32,
    },
    /// A comparison model of tower's retry budget (not our product): over a 10 s window,
    /// retries may reach `10/s × 10 s + 20%` of the window's requests.
    Tower,
}

impl Guard {
    /// Our default budget.
    pub const OUR_BUDGET: Guard = Guard::Budget { ratio: 0.1, burst: 5 };

    /// The name in tables and plots.
    pub fn name(self) -> String {
        match self {
            Guard::NoBudget => "no budget".into(),
            Guard::Budget { ratio, burst } if self == Guard::OUR_BUDGET => {
                format!("Budget::new() ({ratio}, burst {burst})")
            }
            Guard::Budget { ratio, burst } => format!("Budget ratio {ratio}, burst {burst}"),
            Guard::Tower => "tower-style (10/s + 20%)".into(),
        }
    }
}

/// The tower-style comparison gate: deposits per request, a per-second reserve, a window.
struct TowerGate {
    requests: RefCell<VecDeque<Instant>>,
    retries: RefCell<VecDeque<Instant>>,
}

impl TowerGate {
    const TTL: Duration = Duration::from_secs(10);
    const MIN_PER_SEC: f64 = 10.0;
    const PERCENT: f64 = 0.2;

    fn prune(q: &mut VecDeque<Instant>, now: Instant) {
        while q.front().is_some_and(|t| now.saturating_duration_since(*t) > TowerGate::TTL) {
            q.pop_front();
        }
    }

    fn deposit(&self) {
        self.requests.borrow_mut().push_back(Instant::now());
    }

    fn withdraw(&self) -> bool {
        let now = Instant::now();
        let (mut req, mut ret) = (self.requests.borrow_mut(), self.retries.borrow_mut());
        TowerGate::prune(&mut req, now);
        TowerGate::prune(&mut ret, now);
        let allowed = TowerGate::MIN_PER_SEC * TowerGate::TTL.as_secs_f64() + TowerGate::PERCENT * req.len() as f64;
        if (ret.len() as f64) < allowed {
            ret.push_back(now);
            true
        } else {
            false
        }
    }
}

/// Which attempts fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Every attempt during the measured window fails; all others succeed.
    Outage,
    /// Each attempt fails independently with this probability.
    Random(f64),
}

/// Open-loop traffic: Poisson arrivals, a healthy warm-up, then the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// λ: calls per second.
    pub rate: f64,
    /// Healthy traffic before the window (fills the budgets), not measured.
    pub warmup: Duration,
    /// The measured window: calls arriving in it are counted.
    pub window: Duration,
    /// Which attempts fail.
    pub failure: Failure,
}

/// How long an attempt takes, failed or not.
pub const ATTEMPT_LATENCY: Duration = Duration::from_millis(50);

/// The failure every attempt in an outage ends in.
#[derive(Debug)]
pub struct Unavailable;

impl Classify for Unavailable {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Server).with_status(503)
    }
}

/// The totals of the calls that arrived in the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OpenRun {
    /// Calls (first attempts).
    pub calls: u64,
    /// Attempts, retries included.
    pub attempts: u64,
    /// Calls that ended in a success.
    pub succeeded: u64,
}

impl OpenRun {
    /// Attempts ÷ first attempts.
    pub fn amplification(&self) -> f64 {
        self.attempts as f64 / self.calls.max(1) as f64
    }

    /// The share of calls that succeeded.
    pub fn success(&self) -> f64 {
        self.succeeded as f64 / self.calls.max(1) as f64
    }
}

/// One run of open-loop traffic under `Policy::DEFAULT` (4 attempts: at most 3 retries).
pub fn open_run(guard: Guard, load: OpenLoop, seed: u64) -> OpenRun {
    let budget: &'static Budget = match guard {
        Guard::Budget { ratio, burst } => {
            Box::leak(Box::new(Budget::builder().ratio(ratio).burst(burst).build().expect("a valid budget")))
        }
        _ => Box::leak(Box::new(Budget::new())),
    };
    paused(seed, async move {
        let rng = model_rng(seed);
        let start = Instant::now();
        let window = (start + load.warmup, start + load.warmup + load.window);
        let gaps = Exp::new(load.rate).expect("a positive rate");
        let mut at = start;
        let arrivals = std::iter::from_fn(|| {
            at += Duration::from_secs_f64(gaps.sample(&mut *rng.borrow_mut()));
            (at < window.1).then_some(at)
        })
        .collect::<Vec<_>>();
        let tower = TowerGate { requests: RefCell::default(), retries: RefCell::default() };
        let (rng, tower) = (&rng, &tower);
        let fails = move || {
            let now = Instant::now();
            match load.failure {
                Failure::Outage => now >= window.0 && now < window.1,
                Failure::Random(p) => rng.borrow_mut().random::<f64>() < p,
            }
        };
        let call = move |arrival: Instant| async move {
            let attempts = Cell::new(0u64);
            let attempt = || async {
                attempts.set(attempts.get() + 1);
                let failed = fails();
                sleep(ATTEMPT_LATENCY).await;
                if failed { Err(Unavailable) } else { Ok(()) }
            };
            let policy = &Policy::DEFAULT;
            let out = match guard {
                Guard::NoBudget => policy.call().retry(attempt).await,
                Guard::Budget { .. } => policy.call().budget(budget).retry(attempt).await,
                Guard::Tower => {
                    tower.deposit();
                    let mut call = policy.call::<(), Unavailable>();
                    loop {
                        call.start_attempt();
                        let out = attempt().await;
                        match call.settle(out, None) {
                            ControlFlow::Break(out) => break out,
                            ControlFlow::Continue(_) if !tower.withdraw() => break Err(Unavailable),
                            ControlFlow::Continue(plan) => sleep(plan.delay).await,
                        }
                    }
                }
            };
            let counted = arrival >= window.0;
            (counted, attempts.get(), out.is_ok())
        };
        // Each call is created when it arrives, so only the calls in progress are in memory.
        let mut calls = std::pin::pin!(
            stream::iter(arrivals)
                .then(|at| async move {
                    sleep_until(at).await;
                    at
                })
                .map(call)
                .buffer_unordered(usize::MAX)
        );
        let mut run = OpenRun::default();
        while let Some((counted, attempts, ok)) = calls.next().await {
            if counted {
                run.calls += 1;
                run.attempts += attempts;
                run.succeeded += u64::from(ok);
            }
        }
        run
    })
}
