//! Client-side adaptive rate limiting (the AWS SDKs' "adaptive" retry mode): after the
//! provider throttles, every attempt to the endpoint waits for a token from a bucket whose
//! rate follows CUBIC, so a fleet of call sites settles just under what the provider admits.
//!
//! - Until the first throttle (a [`RateLimited`](crate::ErrorKind::RateLimited) or
//!   [`Overloaded`](crate::ErrorKind::Overloaded) failure) the limiter is off: an attempt costs
//!   one relaxed atomic load, and so does a success.
//! - The first throttle arms it: it measures the rate of admitted responses (every response
//!   but a throttle) in 0.5 s buckets, smoothed (`0.8 × newest + 0.2 × previous`) as the AWS
//!   SDKs do. The AWS SDKs measure every response; counting only the admitted ones makes the
//!   first cut land near what the provider accepts even when a retry storm has multiplied
//!   the send rate.
//! - A throttle once a rate is known cuts the rate to `β × min(measured, current)` (β = 0.7)
//!   and switches the token bucket on; at most one cut per 0.5 s, so a burst of 429s from one
//!   overshoot counts once.
//! - Each other response probes back up along the CUBIC curve
//!   `W(t) = C (t − K)³ + W_max`, `K = ∛(W_max (1 − β) / C)` (C = 0.4), never above twice the
//!   measured rate: quickly back to the rate that was throttled, slowly around it, then faster
//!   beyond it.
//!
//! The state behind the switch sits under a `Mutex` held for a few float operations and never
//! across an `.await`.
//!
//! This file holds the [`Limiter`], its switch between off, measuring and gating, and the
//! CUBIC rate it sets on each response. `queue` holds the token bucket and the queue of
//! tickets that attempts wait in; `builder` the [`LimiterBuilder`] and its validation.

mod builder;
mod queue;

pub use builder::{LimiterBuilder, LimiterConfig};

use core::fmt;
use queue::State;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;
use tokio::time::Instant;

const IDLE: u8 = 0;
const MEASURING: u8 = 1;
const GATING: u8 = 2;

/// Width of a rate-measurement bucket, in seconds.
const BUCKET: f64 = 0.5;
/// Weight of the newest bucket in the smoothed rate.
const SMOOTH: f64 = 0.8;
/// The shortest time between two cuts, in seconds.
const HOLD: f64 = 0.5;

/// A client-side rate limiter shared by every call site that targets one endpoint.
///
/// Declare it once as a `static` and hand it to each call ([`Call::limiter`](crate::call::Call::limiter),
/// or `limiter = OPENAI` in the attribute).
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Limiter, Policy};
///
/// static OPENAI: Limiter = Limiter::new("openai");
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let out: Result<u8, ApiError> = Policy::DEFAULT.call().limiter(&OPENAI).retry(|| async { Ok(1) }).await;
/// assert_eq!(out.unwrap(), 1);
/// assert_eq!(OPENAI.rate(), None); // never throttled: the limiter is off
/// # }
/// ```
pub struct Limiter {
    name: &'static str,
    beta: f64,
    scale: f64,
    min_rate: f64,
    max_rate: f64,
    mode: AtomicU8,
    state: Mutex<State>,
    throttles: AtomicU64,
    waits: AtomicU64,
    registered: AtomicBool,
    /// Woken when a waiter gives its place back, so the queue behind it moves up at once.
    moved: Notify,
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
    /// The send rate in force (requests per second), `None` while the limiter is off.
    pub rate: Option<f64>,
    /// The measured rate of admitted (not throttled) responses, once the limiter has been
    /// armed by a throttle.
    pub measured_rate: Option<f64>,
    /// Throttles reported.
    pub throttles: u64,
    /// Attempts that had to wait for a token.
    pub waits: u64,
    /// Attempts waiting for a token now: the queue's length. A waiter that gives up (its
    /// timeout, its deadline, a cancelled call) leaves the queue.
    pub queued: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every limiter that has been throttled, in order; filled once per limiter, on the throttle path.
static ARMED: Mutex<Vec<&'static Limiter>> = Mutex::new(Vec::new());

/// Every limiter that has been throttled at least once, for export.
#[cfg(feature = "metrics")]
pub(crate) fn armed_limiters() -> Vec<&'static Limiter> {
    lock(&ARMED).clone()
}

impl Limiter {
    /// A limiter for the endpoint `name` (the metrics label), with the AWS SDK's constants:
    /// β = 0.7, C = 0.4, rates between 0.5 and 1,000,000 requests per second.
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
    /// static L: Limiter = Limiter::from_config(match Limiter::builder("l").beta(0.5).build() {
    ///     Ok(c) => c,
    ///     Err(_) => panic!(),
    /// });
    /// assert_eq!(L.name(), "l");
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
        LimiterBuilder { name, beta: 0.7, scale: 0.4, min_rate: 0.5, max_rate: 1_000_000.0 }
    }

    const fn with(b: LimiterBuilder) -> Limiter {
        Limiter {
            name: b.name,
            beta: b.beta,
            scale: b.scale,
            min_rate: b.min_rate,
            max_rate: b.max_rate,
            mode: AtomicU8::new(IDLE),
            state: Mutex::new(State::NEW),
            throttles: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            registered: AtomicBool::new(false),
            moved: Notify::const_new(),
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

    /// Reports one response: `throttled` for a rate limit or an overload. The engine reports
    /// every attempt it classifies. Until the first throttle a non-throttled response costs
    /// one relaxed load.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs::feedback");
    /// L.record(false);
    /// L.record(true); // arms the limiter: it starts measuring
    /// assert_eq!(L.stats().throttles, 1);
    /// # }
    /// ```
    pub fn record(&'static self, throttled: bool) {
        let mode = self.mode.load(Relaxed);
        if !throttled {
            if mode != IDLE {
                self.on_success();
            }
            return;
        }
        self.throttles.fetch_add(1, Relaxed);
        self.on_throttle();
    }

    fn on_success(&self) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        let t = s.secs(now);
        s.measure(t, true);
        if self.mode.load(Relaxed) == GATING {
            let dt = t - s.last_throttle - s.k;
            let mut rate = self.scale * dt * dt * dt + s.w_max;
            if s.measured_valid {
                rate = rate.min(2.0 * s.measured);
            }
            self.set_rate(&mut s, t, rate);
        }
    }

    fn on_throttle(&'static self) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        let t = s.secs(now);
        if self.mode.load(Relaxed) == IDLE {
            // The first throttle: start measuring from the next bucket boundary.
            s.bucket = (t / BUCKET).ceil() * BUCKET;
            s.count = 0.0;
            s.last_throttle = t;
            self.mode.store(MEASURING, Relaxed);
            drop(s);
            self.register();
            return;
        }
        s.measure(t, false);
        if !s.measured_valid || t - s.last_cut < HOLD {
            return;
        }
        let gating = self.mode.load(Relaxed) == GATING;
        let base = if gating { s.measured.min(s.fill_rate) } else { s.measured };
        let base = base.clamp(self.min_rate, self.max_rate);
        s.w_max = base;
        s.k = (base * (1.0 - self.beta) / self.scale).cbrt();
        s.last_throttle = t;
        s.last_cut = t;
        if !gating {
            s.dropped.clear();
            s.served = s.issued;
            s.last_refill = t;
        }
        self.set_rate(&mut s, t, base * self.beta);
        self.mode.store(GATING, Relaxed);
    }

    fn set_rate(&self, s: &mut State, t: f64, rate: f64) {
        s.refill(t);
        let rate = if rate.is_nan() { self.min_rate } else { rate.clamp(self.min_rate, self.max_rate) };
        s.fill_rate = rate;
        s.capacity = rate.max(1.0);
        s.served = s.served.min(s.live() + s.capacity);
    }

    fn register(&'static self) {
        if !self.registered.swap(true, Relaxed) {
            lock(&ARMED).push(self);
        }
    }

    /// The send rate in force, in requests per second; `None` while the limiter is off.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Limiter::new("x").rate(), None);
    /// ```
    pub fn rate(&self) -> Option<f64> {
        if self.mode.load(Relaxed) != GATING {
            return None;
        }
        Some(lock(&self.state).fill_rate)
    }

    /// A snapshot of the limiter's state.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Limiter::new("x").stats().waits, 0);
    /// ```
    pub fn stats(&self) -> LimiterStats {
        let mode = self.mode.load(Relaxed);
        let (rate, measured, queued) = if mode == IDLE {
            (None, None, 0)
        } else {
            let mut s = lock(&self.state);
            let t = s.secs(Instant::now());
            s.refill(t);
            // Tickets beyond the tokens made so far are waiting (a float of whole tickets).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let queued = (s.live() - s.served).max(0.0).ceil() as u64;
            ((mode == GATING).then_some(s.fill_rate), s.measured_valid.then_some(s.measured), queued)
        };
        LimiterStats {
            rate,
            measured_rate: measured,
            throttles: self.throttles.load(Relaxed),
            waits: self.waits.load(Relaxed),
            queued,
        }
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter").field("name", &self.name).field("stats", &self.stats()).finish_non_exhaustive()
    }
}
