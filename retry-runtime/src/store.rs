//! Where an endpoint's pacer and a target's breaker keep their state when a fleet of worker
//! processes shares it: the [`Store`] trait, and the words that cross it.
//!
//! In memory is the default: a [`Limiter`](crate::Limiter) or a
//! [`Breaker`](crate::failover::Breaker) with no store keeps its state in the process, as fast
//! as ever. [`Limiter::share`](crate::Limiter::share) (and `Breaker::share`) hands the state
//! to a store at startup, in one line; the attribute does not change. `llm-retry-redis`'s
//! `RedisStore` is the store for a fleet.
//!
//! A store runs the pacer's and the breaker's transitions atomically where the state lives
//! (for Redis, one Lua script per admission), on its own clock: only durations cross the
//! wire, so the workers' clocks never need to agree. Every call is one round trip, and each
//! one fails rather than waits when the store is down or slow: the runtime then paces locally
//! at the shared rate divided by the fleet's size (see [`Sharing`]).
//!
//! ```
//! use llm_retry_runtime::store::{Ask, Admission, Tuning};
//! use std::time::Duration;
//! let ask = Ask { endpoint: "openai", worker: 7, tokens: 0.0, max_wait: Some(Duration::from_secs(5)), lease: None, tuning: Tuning::DEFAULT };
//! assert_eq!(ask.tuning.beta, 0.8);
//! let go = Admission::Go { wait: Duration::ZERO, lease: None, rate: None, fleet: 1 };
//! assert!(go.wait().is_zero());
//! ```

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use std::time::Duration;

/// What a store's calls return: boxed, so that [`Store`] can be a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A place a fleet's pacers and breakers share their state.
///
/// Each method is one round trip that either answers or fails: a store bounds every call by
/// its own command timeout (Redis: about 25 ms) and never retries inside. Errors are not the
/// caller's: on any [`StoreError`] the runtime falls back to local pacing and tries the store
/// again a little later.
///
/// ```
/// use llm_retry_runtime::store::{Admission, Ask, BreakerAnswer, BreakerOp, Report, Store, StoreError, StoreFuture};
/// use std::time::Duration;
///
/// /// A store that is always down: the runtime paces locally.
/// struct Down;
/// impl Store for Down {
///     fn admit<'a>(&'a self, _: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
///         Box::pin(async { Err(StoreError::Unavailable("down".into())) })
///     }
///     fn report<'a>(&'a self, _: &'a str, _: Report) -> StoreFuture<'a, ()> {
///         Box::pin(async { Err(StoreError::Unavailable("down".into())) })
///     }
///     fn breaker<'a>(&'a self, _: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
///         Box::pin(async { Err(StoreError::Unavailable("down".into())) })
///     }
///     fn kind(&self) -> &'static str {
///         "down"
///     }
/// }
/// let s: &dyn Store = &Down;
/// assert_eq!(s.kind(), "down");
/// ```
pub trait Store: Send + Sync + 'static {
    /// One admission for an attempt to `ask.endpoint`: reserves its place in the shared
    /// request and token buckets (and an in-flight lease when `ask.lease` is set), behind any
    /// shared pause, and says how long to sleep before sending. The caller sleeps once; it
    /// never asks again for the same attempt. When the wait would exceed `ask.max_wait` the
    /// store reserves nothing and answers [`Admission::Refused`].
    fn admit<'a>(&'a self, ask: &'a Ask<'a>) -> StoreFuture<'a, Admission>;

    /// Tells the endpoint's shared state what a response said (a throttle, the provider's
    /// rate-limit headers, a token correction) or that a lease is done.
    fn report<'a>(&'a self, endpoint: &'a str, report: Report) -> StoreFuture<'a, ()>;

    /// One step of a shared breaker's state machine (the same transitions as the in-memory
    /// breaker's, with exactly one half-open probe fleet-wide).
    fn breaker<'a>(&'a self, op: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer>;

    /// A short name for logs, stats and metrics labels: `"redis"`.
    fn kind(&self) -> &'static str;
}

/// Why a store could not answer. The runtime falls back to local pacing on any of them.
///
/// ```
/// use llm_retry_runtime::store::StoreError;
/// assert_eq!(StoreError::Timeout.to_string(), "the store did not answer in time");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The command timed out (a slow, paused or stopped server).
    Timeout,
    /// No connection, or the server refused the command; the message never holds
    /// credentials.
    Unavailable(String),
    /// The server answered something the store cannot read (a hostile or corrupted reply).
    BadReply(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Timeout => f.write_str("the store did not answer in time"),
            StoreError::Unavailable(m) => write!(f, "the store is unavailable: {m}"),
            StoreError::BadReply(m) => write!(f, "the store's reply could not be read: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// How a shared pacer learns and bounds its rate: the limiter's own settings, sent with each
/// admission so that a store needs no configuration of its own.
///
/// ```
/// let t = llm_retry_runtime::store::Tuning::DEFAULT;
/// assert_eq!((t.min_rate, t.initial_rate), (0.5, 10.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Tuning {
    /// The rate (requests per second) a fleet starts probing from while it knows none: it
    /// doubles every half second until the first throttle.
    pub initial_rate: f64,
    /// The multiplicative cut on a throttle.
    pub beta: f64,
    /// How fast the rate climbs back after a cut: the share of the cut-from rate regained per
    /// second.
    pub scale: f64,
    /// The lowest and highest rate it may learn.
    pub min_rate: f64,
    /// See `min_rate`.
    pub max_rate: f64,
    /// A configured request rate (requests per second), if any: the rate, and the ceiling of
    /// any rate learned or read from headers.
    pub requests_per_second: Option<f64>,
    /// A configured token rate (tokens per second), if any.
    pub tokens_per_second: Option<f64>,
    /// The longest pause one response may set.
    pub max_pause: Duration,
    /// How many requests may be in flight fleet-wide, if capped.
    pub max_in_flight: Option<u32>,
}

impl Tuning {
    /// The limiter defaults: probing from 10 requests a second, β = 0.8, rates between 0.5
    /// and 1,000,000 a second, nothing configured, pauses of at most 120 s.
    pub const DEFAULT: Tuning = Tuning {
        initial_rate: 10.0,
        beta: 0.8,
        scale: 0.2,
        min_rate: 0.5,
        max_rate: 1_000_000.0,
        requests_per_second: None,
        tokens_per_second: None,
        max_pause: Duration::from_secs(120),
        max_in_flight: None,
    };
}

/// One attempt's request for admission.
///
/// ```
/// use llm_retry_runtime::store::{Ask, Tuning};
/// let a = Ask { endpoint: "e", worker: 1, tokens: 500.0, max_wait: None, lease: None, tuning: Tuning::DEFAULT };
/// assert_eq!(a.tokens, 500.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask<'a> {
    /// The endpoint's name (the limiter's name): the key prefix.
    pub endpoint: &'a str,
    /// This worker's id, random per process: its heartbeat counts it in the fleet.
    pub worker: u64,
    /// The tokens the attempt declares (0 for none).
    pub tokens: f64,
    /// The longest the attempt may wait (what is left of its deadline); `None` for no bound.
    pub max_wait: Option<Duration>,
    /// An in-flight lease to take, and how long it lives if never released (a dead worker's
    /// lease expires): `Some(ttl)` when `tuning.max_in_flight` is set.
    pub lease: Option<Duration>,
    /// How the shared rate is learned and bounded.
    pub tuning: Tuning,
}

/// A store's answer to an [`Ask`].
///
/// ```
/// use llm_retry_runtime::store::Admission;
/// use std::time::Duration;
/// let no = Admission::Refused { wait: Duration::from_secs(9) };
/// assert_eq!(no.wait(), Duration::from_secs(9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Admission {
    /// A place is reserved: sleep `wait`, then send. `lease` is the in-flight lease to
    /// release when the attempt ends; `rate` the shared request rate in force (requests per
    /// second), if one is known; `fleet` the workers seen alive (at least 1).
    Go {
        /// How long to sleep before sending.
        wait: Duration,
        /// The in-flight lease taken, if one was asked for.
        lease: Option<u64>,
        /// The shared request rate in force, if known.
        rate: Option<f64>,
        /// The fleet's size, from the workers' heartbeats.
        fleet: u32,
    },
    /// Nothing reserved: the wait (`wait`) would cross the attempt's deadline.
    Refused {
        /// How long the attempt would have had to wait.
        wait: Duration,
    },
    /// Nothing reserved: `max_in_flight` leases are taken. Ask again after `retry_in`, or
    /// earlier when a lease of this process is released.
    Busy {
        /// When a lease is likely free again.
        retry_in: Duration,
        /// The fleet's size, from the workers' heartbeats.
        fleet: u32,
    },
}

impl Admission {
    /// How long the answer says to wait (or would have had to).
    pub const fn wait(&self) -> Duration {
        match *self {
            Admission::Go { wait, .. } | Admission::Refused { wait } => wait,
            Admission::Busy { retry_in, .. } => retry_in,
        }
    }
}

/// What a response told an endpoint, for its shared state.
///
/// ```
/// use llm_retry_runtime::store::Report;
/// use std::time::Duration;
/// let r = Report::Throttle { retry_after: Some(Duration::from_millis(150)), tuning: Default::default() };
/// assert!(matches!(r, Report::Throttle { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Report {
    /// A 429 or 529: cut the learned rate (once per overshoot: at most once per 0.5 s) and
    /// hold every worker until `retry_after` (at most `tuning.max_pause`) has passed.
    Throttle {
        /// The response's Retry-After, if it had one.
        retry_after: Option<Duration>,
        /// The limiter's settings.
        tuning: Tuning,
    },
    /// The provider's rate-limit headers: the limits become the rates, and "none remaining"
    /// with a reset pauses every worker until it.
    Limits {
        /// The request rate the headers give (requests per second).
        requests_per_second: Option<f64>,
        /// The token rate the headers give (tokens per second).
        tokens_per_second: Option<f64>,
        /// Requests remaining in the provider's window.
        remaining_requests: Option<u64>,
        /// Tokens remaining in the provider's window.
        remaining_tokens: Option<u64>,
        /// Nothing remains: hold everyone this long.
        pause: Option<Duration>,
        /// The limiter's settings.
        tuning: Tuning,
    },
    /// An attempt used `delta` more tokens than it declared (fewer when negative).
    Tokens {
        /// Used minus declared.
        delta: f64,
    },
    /// Slots this process reserved and will not use: its attempts that were sleeping on them
    /// when it met a throttle ask again instead (their slots were spaced at the rate before
    /// the cut). The schedule takes them back, so that the attempts behind are not held
    /// behind slots no one uses. Sent just before the [`Report::Throttle`].
    Abandon {
        /// How many slots.
        slots: u32,
        /// The limiter's settings (the slots go back at the rate in force).
        tuning: Tuning,
    },
    /// An attempt holding an in-flight lease ended.
    Release {
        /// The lease from [`Admission::Go`].
        lease: u64,
    },
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning::DEFAULT
    }
}

/// A breaker's settings as a store needs them.
///
/// ```
/// let s = llm_retry_runtime::store::BreakerRules::DEFAULT;
/// assert_eq!(s.consecutive_failures, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BreakerRules {
    /// Opens after this many failures in a row.
    pub consecutive_failures: u32,
    /// Opens when this share of a window's attempts failed...
    pub failure_rate: f64,
    /// ...once the window holds this many attempts.
    pub min_calls: u32,
    /// The window's length.
    pub window: Duration,
    /// How long it stays open.
    pub cooldown: Duration,
    /// The longest cooldown a server's Retry-After may set.
    pub max_cooldown: Duration,
}

impl BreakerRules {
    /// The in-memory breaker's defaults ([`Breaker::new`](crate::failover::Breaker::new)'s).
    pub const DEFAULT: BreakerRules = crate::breaker::DEFAULT_RULES;
}

/// An attempt's outcome as a breaker counts it.
///
/// ```
/// assert_ne!(llm_retry_runtime::store::Outcome::Success, llm_retry_runtime::store::Outcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The target served the call.
    Success,
    /// The target is failing.
    Failure,
    /// The caller's fault: nothing counted; a probe that ends so closes the breaker.
    Neutral,
}

/// One step of a shared breaker.
///
/// ```
/// use llm_retry_runtime::store::{BreakerOp, BreakerRules};
/// let op = BreakerOp::Admit { breaker: "gpt-4o", rules: BreakerRules::DEFAULT };
/// assert!(matches!(op, BreakerOp::Admit { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BreakerOp<'a> {
    /// May a call go? An open breaker past its cooldown lets exactly one caller fleet-wide
    /// through as the probe (its claim expires after `rules.cooldown` if never settled).
    Admit {
        /// The breaker's name.
        breaker: &'a str,
        /// Its settings.
        rules: BreakerRules,
    },
    /// An attempt's outcome; `probe` when it was the half-open probe.
    Record {
        /// The breaker's name.
        breaker: &'a str,
        /// Its settings.
        rules: BreakerRules,
        /// How the attempt ended.
        outcome: Outcome,
        /// Whether it was the probe.
        probe: bool,
    },
    /// A server asked for a wait over the policy's cap: open for it (at most `max_cooldown`).
    Trip {
        /// The breaker's name.
        breaker: &'a str,
        /// Its settings.
        rules: BreakerRules,
        /// How long the server asked for.
        wait: Duration,
    },
    /// The probe was dropped before it settled: another caller may probe.
    Release {
        /// The breaker's name.
        breaker: &'a str,
    },
}

/// A shared breaker's answer: its state after the step, and for `Admit` what the call may do.
///
/// ```
/// use llm_retry_runtime::store::{BreakerAnswer, SharedBreakerState};
/// let a = BreakerAnswer { state: SharedBreakerState::Closed, admit: true, probe: false, open_for: None, changed: false };
/// assert!(a.admit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerAnswer {
    /// The state after the step.
    pub state: SharedBreakerState,
    /// `Admit`: the call may go.
    pub admit: bool,
    /// `Admit`: it goes as the fleet's one probe.
    pub probe: bool,
    /// While open: how much longer.
    pub open_for: Option<Duration>,
    /// Whether this step moved the breaker (for the once-per-transition log).
    pub changed: bool,
}

/// A shared breaker's state.
///
/// ```
/// assert_ne!(llm_retry_runtime::store::SharedBreakerState::Open, llm_retry_runtime::store::SharedBreakerState::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedBreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the cooldown ends.
    Open,
    /// One probe at a time, fleet-wide.
    HalfOpen,
}

/// Where an endpoint's pacing happens now.
///
/// ```
/// use llm_retry_runtime::store::Sharing;
/// assert_eq!(Sharing::Fallback.name(), "fallback");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sharing {
    /// No store: the process's own state.
    #[default]
    Local,
    /// The store's shared state.
    Shared,
    /// A store is set but could not be reached: local pacing at the shared rate ÷ the fleet's
    /// size, until the store answers again.
    Fallback,
}

impl Sharing {
    /// A short name for logs and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Sharing::Local => "local",
            Sharing::Shared => "shared",
            Sharing::Fallback => "fallback",
        }
    }
}
