//! One pacer per endpoint: every call to a rate-limited provider (annotated fns, builder calls,
//! batches, streams) goes through the endpoint's [`Limiter`], so they pace together.
//!
//! - **A pause.** A throttle (a [`RateLimited`](crate::ErrorKind::RateLimited) or
//!   [`Overloaded`](crate::ErrorKind::Overloaded) failure) with a Retry-After holds every
//!   caller until it ends: one 429 holds the whole endpoint, not just the call that met it.
//! - **A rate.** Attempts are admitted from a token bucket, so that callers resume paced
//!   after a pause, not all at once. Its rate comes from, best first: the provider's
//!   rate-limit headers ([`observe`](Limiter::observe)); the rate the builder configures
//!   ([`requests_per_minute`](LimiterBuilder::requests_per_minute)); learning from throttles.
//!   The first throttle sets β (0.8) times what the slow start was sending; each later one
//!   (at most one per 0.5 s: the 429s of one overshoot count once) cuts by β from the rate in
//!   force, or from the admitted rate if that is less; while nothing is throttled the rate
//!   climbs back linearly in about a second, then slowly, then faster and faster (as CUBIC
//!   does), never above twice the admitted rate. A first throttle after less than 0.5 s of
//!   sending is a guess, and the rate then doubles every half second until the next one.
//! - **A slow start.** Until it knows a rate, a fresh limiter admits a window of attempts
//!   (10 by default, [`initial_window`](LimiterBuilder::initial_window)) that grows by one
//!   per success, as TCP does: a herd released at once meets the provider a window at a time.
//!   Once the window passes 1,024 without a throttle the limiter opens: an attempt then costs
//!   one relaxed atomic load, and so does a success.
//! - **Tokens.** With [`tokens_per_minute`](LimiterBuilder::tokens_per_minute) (or the
//!   provider's token headers) an attempt that declares its cost
//!   ([`acquire_tokens`](Limiter::acquire_tokens)) also waits for room in a token bucket; the
//!   cost is corrected from the provider's reported usage with
//!   [`correct_tokens`](Limiter::correct_tokens).
//!
//! Measured in the herd simulator (docs/PERFORMANCE.md, scenario B): 100 calls released at
//! once against 10 requests a second make 1.05 calls each; with the provider's headers, 1.00.
//!
//! The state sits under a `Mutex` held for a few float operations and never across an
//! `.await`.
//!
//! This file holds the [`Limiter`], its modes and what it is told; `learn` the rate it sets
//! on each response and throttle; `headers` what it makes of the provider's rate-limit
//! headers; `queue` the token buckets and the queue of tickets attempts wait in; `builder`
//! the [`LimiterBuilder`] and its validation.

mod builder;
mod bulkhead;
mod headers;
mod learn;
mod queue;
mod rates;
mod share;

pub use builder::{LimiterBuilder, LimiterConfig};
pub use bulkhead::InFlight;

use crate::store::Sharing;
use core::fmt;
use queue::State;
use share::Share;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Slow start: attempts take tickets from a bucket that successes refill.
const COLD: u8 = 0;
/// Never throttled and past slow start: attempts go at once.
const OPEN: u8 = 1;
/// A rate is in force: attempts take tickets from the paced bucket.
const GATING: u8 = 2;
/// A store holds the state a fleet shares ([`Limiter::share`]): attempts ask it.
const SHARED: u8 = 3;

/// A client-side pacer shared by every call site that targets one endpoint.
///
/// Declare it once as a `static` and hand it to each call ([`Call::limiter`](crate::call::Call::limiter),
/// `limiter = OPENAI` in the attribute, or [`BatchBuilder::limiter`](crate::batch::BatchBuilder::limiter)).
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Limiter, Policy};
///
/// static OPENAI: Limiter = Limiter::new("openai");
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let out: Result<u8, ApiError> = Policy::DEFAULT.call().limiter(&OPENAI).retry(|| async { Ok(1) }).await;
/// assert_eq!(out.unwrap(), 1);
/// assert_eq!(OPENAI.rate(), None); // never throttled, no rate known: no pace
/// # }
/// ```
pub struct Limiter {
    name: &'static str,
    config: LimiterBuilder,
    mode: AtomicU8,
    state: Mutex<State>,
    throttles: AtomicU64,
    waits: AtomicU64,
    registered: AtomicBool,
    /// Woken when a waiter gives its place back or a success refills the slow-start window,
    /// so the queue behind it moves up at once.
    moved: Notify,
    /// The store a fleet shares this endpoint's state through, once [`share`](Self::share)d.
    share: OnceLock<Share>,
    /// Attempts of this process holding a place in flight (see `bulkhead`), and the waiters
    /// for one.
    in_flight: AtomicU32,
    room: Notify,
}

/// A limiter's state at one moment.
///
/// ```
/// let s = llm_retry_runtime::limits::LimiterStats::default();
/// assert_eq!(s.rate, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LimiterStats {
    /// The send rate in force (requests per second), `None` while no rate is known.
    pub rate: Option<f64>,
    /// The smoothed rate of admitted (not throttled) responses, once the limiter paces.
    pub measured_rate: Option<f64>,
    /// Throttles reported.
    pub throttles: u64,
    /// Attempts that had to wait (for a token, the slow-start window or a pause).
    pub waits: u64,
    /// Attempts waiting now: the queue's length. A waiter that gives up (its timeout, its
    /// deadline, a cancelled call) leaves the queue.
    pub queued: u64,
    /// How much longer every attempt is held by a throttle's Retry-After (or a provider's
    /// "none left until the reset"); zero when not paused.
    pub paused_for: Duration,
    /// Where the rate in force comes from.
    pub source: RateSource,
    /// The token rate in force (tokens per second), when one is known.
    pub token_rate: Option<f64>,
    /// The slow-start window while the limiter is in slow start.
    pub window: Option<u64>,
    /// Where the limiter paces: alone ([`Sharing::Local`]), through the store it
    /// [`share`](Limiter::share)s, or alone because that store cannot answer.
    pub mode: Sharing,
    /// With a store: the fleet's size from the workers' heartbeats, last seen.
    pub fleet: Option<u32>,
    /// With a store: the times it could not answer and the limiter paced alone.
    pub fallbacks: u64,
    /// Attempts of this process holding a place in flight, with
    /// [`max_in_flight`](LimiterBuilder::max_in_flight).
    pub in_flight: u32,
}

/// Where a limiter's rate comes from, best first.
///
/// ```
/// use llm_retry_runtime::limits::RateSource;
/// assert_eq!(RateSource::default(), RateSource::None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateSource {
    /// No rate: slow start, or open.
    #[default]
    None,
    /// The provider's rate-limit headers.
    Headers,
    /// The builder's `requests_per_minute`.
    Configured,
    /// Learned from throttles.
    Learned,
    /// The fleet's, from the store the limiter [`share`](Limiter::share)s.
    Shared,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every limiter that has paced, in order; filled once per limiter, off the success path.
static ARMED: Mutex<Vec<&'static Limiter>> = Mutex::new(Vec::new());

/// Every limiter that has paced at least once, for export.
#[cfg(feature = "metrics")]
pub(crate) fn armed_limiters() -> Vec<&'static Limiter> {
    lock(&ARMED).clone()
}

impl Limiter {
    /// A limiter for the endpoint `name` (the metrics label) with the defaults: a slow start
    /// from 10 attempts, β = 0.8, rates between 0.5 and 1,000,000 requests per second, no
    /// configured rate, pauses of at most 120 s.
    ///
    /// ```
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("openai");
    /// assert_eq!(L.stats().throttles, 0);
    /// ```
    pub const fn new(name: &'static str) -> Limiter {
        Limiter::with(Limiter::builder(name))
    }

    /// The limiter a validated configuration describes.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// static L: Limiter = Limiter::from_config(match Limiter::builder("l").requests_per_minute(600.0).build() {
    ///     Ok(c) => c,
    ///     Err(_) => panic!(),
    /// });
    /// assert_eq!(L.rate(), Some(10.0));
    /// ```
    pub const fn from_config(config: LimiterConfig) -> Limiter {
        Limiter::with(config.0)
    }

    /// A builder for the endpoint `name`, starting from the defaults of [`Limiter::new`].
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").beta(1.0).build().is_err());
    /// ```
    pub const fn builder(name: &'static str) -> LimiterBuilder {
        LimiterBuilder::new(name)
    }

    const fn with(b: LimiterBuilder) -> Limiter {
        // A capped limiter is never open: each attempt takes a place in flight.
        let unpaced_gate = (b.token_rate().is_some() || b.max_in_flight > 0) && b.initial_window == 0;
        let mode = if b.configured_rate().is_some() || unpaced_gate {
            GATING
        } else if b.initial_window == 0 {
            OPEN
        } else {
            COLD
        };
        Limiter {
            name: b.name,
            config: b,
            mode: AtomicU8::new(mode),
            state: Mutex::new(State::new(&b)),
            throttles: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            registered: AtomicBool::new(false),
            moved: Notify::const_new(),
            share: OnceLock::new(),
            in_flight: AtomicU32::new(0),
            room: Notify::const_new(),
        }
    }

    /// The endpoint's name.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Limiter::new("openai").name(), "openai");
    /// ```
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Reports one response: `throttled` for a rate limit or an overload, without a
    /// Retry-After (see [`throttled`](Self::throttled) for one with). The engine reports every
    /// attempt whose request went out. Once the limiter is open, a non-throttled response
    /// costs one relaxed load.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs::feedback");
    /// L.record(false);
    /// L.record(true); // a throttle: the limiter paces from now on
    /// assert_eq!(L.stats().throttles, 1);
    /// assert!(L.rate().is_some());
    /// # }
    /// ```
    #[inline]
    pub fn record(&'static self, throttled: bool) {
        if throttled {
            self.throttled(None);
        } else {
            self.heard_response();
        }
    }

    /// A response that was not a throttle, for limiters that are not `static` (a batch's own).
    #[inline]
    pub(crate) fn heard_response(&self) {
        let mode = self.mode.load(Relaxed);
        // A store learns from throttles and headers alone: a success tells it nothing.
        if mode != OPEN && mode != SHARED {
            self.on_response();
        }
    }

    /// A throttle, for limiters that are not `static` (a batch's own).
    pub(crate) fn heard_throttle(&self, retry_after: Option<Duration>) {
        self.throttles.fetch_add(1, Relaxed);
        if self.mode.load(Relaxed) == SHARED {
            self.shared_throttle(retry_after);
        } else {
            self.on_throttle(retry_after);
        }
    }

    /// Reports a throttle whose response said when to come back (`retry_after`, clamped to
    /// the limiter's [`max_pause`](LimiterBuilder::max_pause)): every caller is held until
    /// then, and resumes paced.
    ///
    /// ```
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs::throttled");
    /// L.throttled(Some(Duration::from_millis(300)));
    /// assert_eq!(L.stats().paused_for, Duration::from_millis(300));
    /// let t = tokio::time::Instant::now();
    /// L.acquire().await;
    /// assert!(t.elapsed() >= Duration::from_millis(300));
    /// # }
    /// ```
    pub fn throttled(&'static self, retry_after: Option<Duration>) {
        self.heard_throttle(retry_after);
        self.register();
    }

    fn register(&'static self) {
        if !self.registered.swap(true, Relaxed) {
            lock(&ARMED).push(self);
        }
    }

    /// The send rate in force, in requests per second; `None` while none is known.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Limiter::new("x").rate(), None);
    /// ```
    pub fn rate(&self) -> Option<f64> {
        match self.mode.load(Relaxed) {
            GATING => lock(&self.state).request_rate(),
            SHARED => self.share_view().and_then(|l| l.rate),
            _ => None,
        }
    }

    /// A snapshot of the limiter's state.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Limiter::new("x").stats().waits, 0);
    /// ```
    pub fn stats(&self) -> LimiterStats {
        let mode = self.mode.load(Relaxed);
        let mut st = LimiterStats {
            in_flight: self.in_flight.load(Relaxed),
            throttles: self.throttles.load(Relaxed),
            waits: self.waits.load(Relaxed),
            ..LimiterStats::default()
        };
        if let Some(link) = self.share_view() {
            st.mode = link.mode;
            st.fleet = Some(link.fleet);
            st.fallbacks = link.fallbacks;
            if mode == SHARED {
                st.rate = link.rate;
                st.source = if link.rate.is_some() { RateSource::Shared } else { RateSource::None };
                return st;
            }
        }
        if mode == OPEN {
            return st;
        }
        let mut s = lock(&self.state);
        let t = s.secs(Instant::now());
        s.refill(t);
        st.queued = s.waiting;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        {
            st.window = (mode == COLD).then_some(s.window.max(0.0) as u64);
        }
        if mode == GATING {
            st.rate = s.request_rate();
            st.source = s.source;
        }
        st.measured_rate = s.admitted.valid().then(|| s.admitted.estimate(t));
        st.paused_for = Duration::try_from_secs_f64((s.pause_until - t).max(0.0)).unwrap_or(Duration::MAX);
        st.token_rate = s.tokens.rate();
        st
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter").field("name", &self.name).field("stats", &self.stats()).finish_non_exhaustive()
    }
}
