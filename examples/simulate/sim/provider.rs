//! Scenario B's provider: a token bucket in front of a service with log-normal latency,
//! whose 429s carry a Retry-After in seconds or milliseconds.

use super::model_rng;
use llm_retry::{Classification, Classify, ErrorKind, http::RetryAfter};
use rand::rngs::SmallRng;
use rand_distr::{Distribution, LogNormal};
use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime};
use tokio::time::{Instant, sleep};

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
                RetryAfter::parse(&text, SystemTime::UNIX_EPOCH)
            }
            Hint::Millis => RetryAfter::parse_ms(&format!("{}", (wait * 1000.0).ceil().max(1.0))),
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

/// A 429 from the provider, with the Retry-After it sent (if the header parsed).
#[derive(Debug)]
pub struct Throttled(pub(super) Option<RetryAfter>);

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
pub(super) struct Provider {
    cfg: LlmConfig,
    tokens: Cell<f64>,
    refilled: Cell<Instant>,
    pub(super) calls: Cell<u64>,
    pub(super) throttled: Cell<u64>,
    rng: RefCell<SmallRng>,
    service: LogNormal<f64>,
}

impl Provider {
    pub(super) fn new(cfg: LlmConfig, seed: u64) -> Provider {
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
    pub(super) async fn request(&self) -> Result<(), Throttled> {
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
