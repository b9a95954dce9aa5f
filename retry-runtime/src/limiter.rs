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

use crate::limits::LimitError;
use core::fmt;
use core::future::Future;
use core::future::poll_fn;
use core::pin::{Pin, pin};
use core::task::Poll;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
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
/// A waiter for a ticket this close sleeps the whole wait; one further off sleeps half of it.
const NAP: Duration = Duration::from_millis(20);

/// A client-side rate limiter shared by every call site that targets one endpoint.
///
/// Declare it once as a `static` and hand it to each call ([`Call::limiter`](crate::Call::limiter),
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

/// Builds a [`Limiter`]; every method is a `const fn` and [`build`](Self::build) validates
/// into a [`LimiterConfig`], which [`Limiter::from_config`] turns into the limiter. (A limiter
/// holds a `Mutex`, whose destructor a `match` in a `static` may not drop on every platform;
/// the validated config is a plain `Copy` value.)
///
/// ```
/// use llm_retry_runtime::Limiter;
/// static ANTHROPIC: Limiter = Limiter::from_config(match Limiter::builder("anthropic").max_rate(50.0).build() {
///     Ok(c) => c,
///     Err(e) => panic!("{}", e.message()),
/// });
/// assert_eq!(ANTHROPIC.name(), "anthropic");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterBuilder {
    name: &'static str,
    beta: f64,
    scale: f64,
    min_rate: f64,
    max_rate: f64,
}

/// A validated limiter configuration, from [`LimiterBuilder::build`].
///
/// ```
/// let c = llm_retry_runtime::Limiter::builder("x").build().unwrap();
/// assert_eq!(llm_retry_runtime::Limiter::from_config(c).name(), "x");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig(LimiterBuilder);

/// A limiter's state at one moment.
///
/// ```
/// let s = llm_retry_runtime::LimiterStats::default();
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

#[derive(Debug)]
struct State {
    base: Option<Instant>,
    fill_rate: f64,
    capacity: f64,
    /// Tokens made so far (the bucket's fill, as a running total).
    served: f64,
    /// Tickets handed out so far; ticket `k` may go once `served >= k - dropped below k`.
    /// `served - live()`
    /// is what a plain bucket would call its tokens; below zero, the queue.
    issued: f64,
    /// Tickets given back before their turn (their waiters gave up), in order: each moves
    /// the tickets behind it up one place and leaves those ahead alone. Once its turn comes
    /// it is folded into `served`, so this holds only drops that are still ahead.
    dropped: Vec<f64>,
    last_refill: f64,
    measured: f64,
    measured_valid: bool,
    bucket: f64,
    count: f64,
    w_max: f64,
    k: f64,
    last_throttle: f64,
    last_cut: f64,
}

impl State {
    const NEW: State = State {
        base: None,
        fill_rate: 0.0,
        capacity: 1.0,
        served: 0.0,
        issued: 0.0,
        dropped: Vec::new(),
        last_refill: 0.0,
        measured: 0.0,
        measured_valid: false,
        bucket: 0.0,
        count: 0.0,
        w_max: 0.0,
        k: 0.0,
        last_throttle: 0.0,
        last_cut: f64::NEG_INFINITY,
    };

    fn secs(&mut self, now: Instant) -> f64 {
        let base = *self.base.get_or_insert(now);
        now.saturating_duration_since(base).as_secs_f64()
    }

    fn refill(&mut self, t: f64) {
        let dt = (t - self.last_refill).max(0.0);
        self.served = (self.served + dt * self.fill_rate).min(self.live() + self.capacity);
        self.last_refill = t;
        // A dropped ticket whose turn has come: its token goes to the ticket behind it, which
        // is what `served + 1` says once it no longer counts as a drop below that ticket.
        while self.dropped.first().is_some_and(|&d| d <= self.served) {
            self.dropped.remove(0);
            self.served += 1.0;
        }
    }

    /// Tickets handed out and not given back.
    fn live(&self) -> f64 {
        self.issued - self.dropped.len() as f64
    }

    /// Ticket `k`'s place in the queue: `k` less the tickets ahead of it that were given back.
    fn place(&self, ticket: f64) -> f64 {
        ticket - self.dropped.partition_point(|&d| d < ticket) as f64
    }

    /// Advances the measurement to `t`, counting one response if it was `admitted`.
    fn measure(&mut self, t: f64, admitted: bool) {
        if t < self.bucket {
            return;
        }
        let b = (t / BUCKET).floor() * BUCKET;
        if b > self.bucket {
            let rate = self.count / (b - self.bucket);
            self.measured = if self.measured_valid { rate * SMOOTH + self.measured * (1.0 - SMOOTH) } else { rate };
            self.measured_valid = true;
            self.count = 0.0;
            self.bucket = b;
        }
        if admitted {
            self.count += 1.0;
        }
    }
}

/// A place in a limiter's queue. Dropped before its waiter went (the attempt timed out or
/// the call was cancelled while it queued), it gives the place back, so the waiters behind
/// it are not held for a request that was never sent.
struct Ticket<'a> {
    limiter: &'a Limiter,
    number: f64,
    used: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.limiter.return_ticket(self.number);
        }
    }
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

    /// Waits for a token to send one request. Returns at once (after one relaxed load) until
    /// the endpoint has been throttled. The engine calls it before every attempt.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static L: llm_retry_runtime::Limiter = llm_retry_runtime::Limiter::new("docs");
    /// L.acquire().await;
    /// # }
    /// ```
    pub async fn acquire(&self) {
        if let Some(ticket) = self.ticket() {
            self.wait_for(ticket).await;
        }
    }

    /// The engine's form of [`acquire`](Self::acquire): `None` to go now, or the wait boxed,
    /// so that an attempt's future grows by one pointer rather than by a timer. Allocates only
    /// for an attempt that has to wait.
    pub(crate) fn wait(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        let ticket = self.ticket()?;
        Some(Box::pin(self.wait_for(ticket)))
    }

    /// A place in the queue, if the limiter is on and the place is not due yet.
    fn ticket(&self) -> Option<Ticket<'_>> {
        if self.mode.load(Relaxed) != GATING {
            return None;
        }
        let (number, wait) = self.take_ticket();
        // Taken even when due at once, so that the `Ticket` below is made only to wait.
        let ticket = Ticket { limiter: self, number, used: wait.is_none() };
        wait?;
        self.waits.fetch_add(1, Relaxed);
        Some(ticket)
    }

    async fn wait_for(&self, mut ticket: Ticket<'_>) {
        // Tickets are served in order at the rate in force when they come up. A waiter sleeps
        // half its estimate and looks again: after a cut it sleeps on rather than going early,
        // and after a rise it oversleeps by at most half a wait (a few wake-ups per ticket).
        // A waiter dropped on the way (a timeout, a deadline, a cancelled call) gives its
        // place back when its `Ticket` drops, and wakes the waiters behind it to move up.
        loop {
            // Registered before the check, so a place given back in between is not missed.
            let mut moved = pin!(self.moved.notified());
            moved.as_mut().enable();
            let Some(w) = self.check_ticket(ticket.number) else { break };
            let nap = if w <= NAP { w } else { (w / 2).max(NAP) };
            let mut nap = pin!(tokio::time::sleep(nap));
            poll_fn(|cx| {
                if moved.as_mut().poll(cx).is_ready() || nap.as_mut().poll(cx).is_ready() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
        ticket.used = true;
    }

    /// A ticket that was never used: the queue behind it moves up one place. In the bucket's
    /// terms, the token made (or to be made) for it goes to the next ticket instead.
    fn return_ticket(&self, ticket: f64) {
        {
            let mut s = lock(&self.state);
            let t = s.secs(Instant::now());
            s.refill(t);
            if let Err(at) = s.dropped.binary_search_by(|d| d.total_cmp(&ticket)) {
                s.dropped.insert(at, ticket);
            }
            s.refill(t);
        }
        self.moved.notify_waiters();
    }

    /// Takes the next ticket: it and how long until it comes up (`None`: now).
    fn take_ticket(&self) -> (f64, Option<Duration>) {
        let mut s = lock(&self.state);
        s.issued += 1.0;
        let ticket = s.issued;
        (ticket, Limiter::until(&mut s, ticket))
    }

    fn check_ticket(&self, ticket: f64) -> Option<Duration> {
        Limiter::until(&mut lock(&self.state), ticket)
    }

    fn until(s: &mut State, ticket: f64) -> Option<Duration> {
        let t = s.secs(Instant::now());
        s.refill(t);
        let place = s.place(ticket);
        if s.served >= place {
            return None;
        }
        let wait = (place - s.served) / s.fill_rate.max(f64::MIN_POSITIVE);
        Some(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX).max(Duration::from_micros(1)))
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

impl LimiterBuilder {
    /// The factor a throttle multiplies the rate by, strictly between 0 and 1 (AWS: 0.7).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").beta(0.5).build().is_ok());
    /// ```
    pub const fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// CUBIC's scale constant C (AWS: 0.4): larger probes back up faster.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").scale(0.0).build().is_err());
    /// ```
    pub const fn scale(mut self, c: f64) -> Self {
        self.scale = c;
        self
    }

    /// The floor of the send rate, in requests per second (AWS: 0.5).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").min_rate(1.0).build().is_ok());
    /// ```
    pub const fn min_rate(mut self, rps: f64) -> Self {
        self.min_rate = rps;
        self
    }

    /// The ceiling of the send rate, in requests per second.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").max_rate(0.1).build().is_err()); // below the floor
    /// ```
    pub const fn max_rate(mut self, rps: f64) -> Self {
        self.max_rate = rps;
        self
    }

    /// The validated configuration (for [`Limiter::from_config`]), or why the arguments are
    /// wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{LimitError, Limiter};
    /// assert_eq!(Limiter::builder("x").min_rate(f64::NAN).build().unwrap_err(), LimitError::InvalidRate);
    /// ```
    pub const fn build(self) -> Result<LimiterConfig, LimitError> {
        let rates_ok = self.min_rate > 0.0 && self.max_rate.is_finite() && self.min_rate <= self.max_rate;
        if !rates_ok {
            return Err(LimitError::InvalidRate);
        }
        if !(self.beta > 0.0 && self.beta < 1.0) {
            return Err(LimitError::InvalidBeta);
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(LimitError::InvalidScale);
        }
        Ok(LimiterConfig(self))
    }
}
