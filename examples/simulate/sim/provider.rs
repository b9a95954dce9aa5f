//! Scenario B's provider: a token bucket in front of a service with log-normal latency,
//! whose 429s carry a Retry-After in seconds or milliseconds, and whose every response
//! carries OpenAI's rate-limit headers (read only by the clients that observe them). Its
//! token-bound variant adds a tokens-per-minute bucket and log-normal prompt sizes.

use super::model_rng;
use llm_retry::{Classification, Classify, ErrorKind, Limiter, http::RetryAfter};
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
    /// The token-bound variant: a tokens-per-minute limit and the prompts' sizes.
    pub tokens: Option<TokenModel>,
}

/// The token-bound variant of scenario B: a tokens-per-minute bucket (a minute's worth of
/// room, as OpenAI's) in front of the request bucket, and prompts of log-normal size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenModel {
    /// Tokens a minute.
    pub per_minute: f64,
    /// The prompts' median size in tokens.
    pub median: f64,
    /// σ of the prompts' log-normal size.
    pub sigma: f64,
}

impl TokenModel {
    /// 60,000 tokens a minute, prompts of median 500 tokens with σ 0.8 (mean ≈ 690).
    pub const DEFAULT: TokenModel = TokenModel { per_minute: 60_000.0, median: 500.0, sigma: 0.8 };
}

/// How far below a token (or a prompt's tokens) the provider's float sums may fall and still
/// count as there: a billionth of one, a tenth of a nanosecond at 10 requests a second.
const EXACT: f64 = 1e-9;

/// How long a 429 takes to come back.
pub const THROTTLE_LATENCY: Duration = Duration::from_millis(50);

impl LlmConfig {
    /// The configuration of the issue: C = 10/s, B = 10, S = 2 s with σ = 0.5.
    pub fn new(tasks: usize, concurrency: Option<usize>, hint: Hint) -> LlmConfig {
        LlmConfig {
            tasks,
            concurrency,
            rate: 10.0,
            burst: 10.0,
            median: Duration::from_secs(2),
            sigma: 0.5,
            hint,
            tokens: None,
        }
    }

    /// The same, token-bound: [`TokenModel::DEFAULT`] in front of it.
    pub fn token_bound(tasks: usize, concurrency: Option<usize>) -> LlmConfig {
        LlmConfig { tokens: Some(TokenModel::DEFAULT), ..LlmConfig::new(tasks, concurrency, Hint::Millis) }
    }

    /// The least makespan any client could reach: `max((N − B)/C + S, N·S/K)`, and for the
    /// token-bound variant `(Σ tokens − a minute's worth)/(tokens a second) + S` too (the
    /// prompts of run `seed`).
    pub fn floor(&self, seed: u64) -> f64 {
        let n = self.tasks as f64;
        let s = self.median.as_secs_f64();
        let limited = (n - self.burst).max(0.0) / self.rate + s;
        let bounded = self.concurrency.map_or(0.0, |k| n * s / k as f64);
        let tokens = self.tokens.map_or(0.0, |t| {
            let total: f64 = prompt_sizes(self, seed).iter().map(|&c| c as f64).sum();
            (total - t.per_minute).max(0.0) / (t.per_minute / 60.0) + s
        });
        limited.max(bounded).max(tokens)
    }
}

/// The prompts' sizes in tokens for run `seed` (none without a token model), from a generator
/// of their own, so that they do not shift the service times.
pub fn prompt_sizes(cfg: &LlmConfig, seed: u64) -> Vec<u64> {
    let Some(t) = cfg.tokens else { return Vec::new() };
    let sizes = LogNormal::new(t.median.ln(), t.sigma).expect("a valid log-normal");
    let mut rng = model_rng(seed ^ 0x70_6b_65_6e);
    let rng = rng.get_mut();
    (0..cfg.tasks).map(|_| (sizes.sample(rng).round() as u64).clamp(1, t.per_minute as u64)).collect()
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
    /// The tokens-per-minute bucket's room (token-bound variant).
    room: Cell<f64>,
    /// Each task's prompt size (token-bound variant).
    pub(super) sizes: Vec<u64>,
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
            room: Cell::new(cfg.tokens.map_or(0.0, |t| t.per_minute)),
            sizes: prompt_sizes(&cfg, seed),
            refilled: Cell::new(Instant::now()),
            calls: Cell::new(0),
            throttled: Cell::new(0),
            rng: model_rng(seed),
            service: LogNormal::new(cfg.median.as_secs_f64().ln(), cfg.sigma).expect("a valid log-normal"),
        }
    }

    /// One request of task `task`: a token (and its prompt's tokens) and a success after the
    /// service time, or a 429 after 50 ms saying how long until there is room. Each response
    /// carries OpenAI's rate-limit headers as the buckets stood when the request arrived;
    /// `observe` hands them to a limiter, as `send_observed` would.
    pub(super) async fn request(&self, task: usize, observe: Option<&'static Limiter>) -> Result<(), Throttled> {
        self.calls.set(self.calls.get() + 1);
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.refilled.get()).as_secs_f64();
        let tokens = (self.tokens.get() + dt * self.cfg.rate).min(self.cfg.burst);
        let (room, cost, per_second) = match self.cfg.tokens {
            Some(t) => {
                let per_second = t.per_minute / 60.0;
                let room = (self.room.get() + dt * per_second).min(t.per_minute);
                (room, self.sizes.get(task).copied().unwrap_or(0) as f64, per_second)
            }
            None => (0.0, 0.0, 1.0),
        };
        self.refilled.set(now);
        // A provider counts exactly; these sums of float products can fall a hair short of a
        // token that is there (0.18 + 0.082 × 10 = 0.9999999999999998), so a request that
        // comes as its token is made is let in.
        if tokens >= 1.0 - EXACT && room >= cost - EXACT {
            let (tokens, room) = ((tokens - 1.0).max(0.0), (room - cost).max(0.0));
            self.tokens.set(tokens);
            self.room.set(room);
            let headers = self.headers(tokens, room);
            let s = self.service.sample(&mut *self.rng.borrow_mut());
            sleep(Duration::from_secs_f64(s)).await;
            if let Some(l) = observe {
                l.observe(&headers);
            }
            Ok(())
        } else {
            self.tokens.set(tokens);
            self.room.set(room);
            self.throttled.set(self.throttled.get() + 1);
            let wait = ((1.0 - tokens) / self.cfg.rate).max((cost - room) / per_second);
            let hint = self.cfg.hint.header(wait);
            let headers = self.headers(tokens, room);
            sleep(THROTTLE_LATENCY).await;
            if let Some(l) = observe {
                l.observe(&headers);
            }
            Err(Throttled(hint))
        }
    }

    /// OpenAI's rate-limit headers for buckets holding `tokens` requests and `room` tokens.
    fn headers(&self, tokens: f64, room: f64) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            h.insert(name, value.parse().expect("a header value"));
        };
        let ms = |secs: f64| format!("{}ms", (secs * 1000.0).ceil().max(0.0));
        put("x-ratelimit-limit-requests", format!("{}", (self.cfg.rate * 60.0).round()));
        put("x-ratelimit-remaining-requests", format!("{}", tokens.max(0.0).floor()));
        put("x-ratelimit-reset-requests", ms((self.cfg.burst - tokens) / self.cfg.rate));
        if let Some(t) = self.cfg.tokens {
            put("x-ratelimit-limit-tokens", format!("{}", t.per_minute.round()));
            put("x-ratelimit-remaining-tokens", format!("{}", room.max(0.0).floor()));
            put("x-ratelimit-reset-tokens", ms((t.per_minute - room) / (t.per_minute / 60.0)));
        }
        h
    }
}
