//! Adaptive delay (the article's `AdaptiveRetryStrategy`): the back-off delay grows with the
//! recent error rate of an endpoint, shared by every call site that targets it.
//!
//! The window is the last 128 attempt outcomes, one bit each in two `AtomicU64` words, plus
//! the time of the last error. A success costs one relaxed load while the endpoint has never
//! failed, and a counter increment and a load after that: no lock, no clock read. An error
//! reads the clock and sets its bit. The multiplier is
//! `1 + (max_multiplier - 1) × error_rate × (1 - age_of_last_error / window)`: it rises with
//! the share of failed attempts, falls as successes push failures out of the ring, and fades
//! to 1 over `window` when traffic stops.

use crate::limits::LimitError;
use core::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

/// Outcomes kept in the ring.
pub(crate) const RING: u64 = 128;

/// The time base of every window, shared so that `Adaptive` holds no destructor and can be
/// built by `match` in a `static`.
static BASE: OnceLock<Instant> = OnceLock::new();

/// Recent errors of one endpoint, and the delay multiplier they imply.
///
/// Declare it once as a `static` and hand it to each call ([`Call::adaptive`](crate::call::Call::adaptive),
/// or `adaptive = PATH` in the attribute).
///
/// ```
/// use llm_retry_runtime::Adaptive;
///
/// static OPENAI_ERRORS: Adaptive = Adaptive::new(); // up to 3x the delay, errors fade over 300 s
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert_eq!(OPENAI_ERRORS.multiplier(), 1.0);
/// for _ in 0..64 {
///     OPENAI_ERRORS.record_error();
/// }
/// assert_eq!(OPENAI_ERRORS.error_rate(), 0.5);
/// assert_eq!(OPENAI_ERRORS.multiplier(), 2.0);
/// # }
/// ```
pub struct Adaptive {
    /// One bit per outcome, 1 for an error.
    bits: [AtomicU64; 2],
    /// Outcomes recorded since the first error.
    head: AtomicU64,
    /// Milliseconds from `base` to the last error, plus one; 0 before the first error.
    last_error: AtomicU64,
    window: Duration,
    max_multiplier: f64,
}

/// Builds an [`Adaptive`]; every method is a `const fn` and [`build`](Self::build) validates.
///
/// ```
/// use llm_retry_runtime::Adaptive;
/// use std::time::Duration;
/// static A: Adaptive = match Adaptive::builder().max_multiplier(4.0).window(Duration::from_secs(60)).build() {
///     Ok(a) => a,
///     Err(e) => panic!("{}", e.message()),
/// };
/// assert_eq!(A.max_multiplier(), 4.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveBuilder {
    window: Duration,
    max_multiplier: f64,
}

impl Adaptive {
    /// The defaults: the delay is multiplied by up to 3 (2 at a 50% error rate), and errors
    /// fade over 300 s.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Adaptive::new().window().as_secs(), 300);
    /// ```
    pub const fn new() -> Adaptive {
        Adaptive::with(Duration::from_secs(300), 3.0)
    }

    /// A builder starting from the defaults of [`Adaptive::new`].
    ///
    /// ```
    /// assert!(llm_retry_runtime::Adaptive::builder().max_multiplier(0.5).build().is_err());
    /// ```
    pub const fn builder() -> AdaptiveBuilder {
        AdaptiveBuilder { window: Duration::from_secs(300), max_multiplier: 3.0 }
    }

    const fn with(window: Duration, max_multiplier: f64) -> Adaptive {
        Adaptive {
            bits: [AtomicU64::new(0), AtomicU64::new(0)],
            head: AtomicU64::new(0),
            last_error: AtomicU64::new(0),
            window,
            max_multiplier,
        }
    }

    /// How long an error keeps raising the delay after traffic stops.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Adaptive::new().window(), std::time::Duration::from_secs(300));
    /// ```
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// The multiplier at a 100% error rate.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Adaptive::new().max_multiplier(), 3.0);
    /// ```
    pub const fn max_multiplier(&self) -> f64 {
        self.max_multiplier
    }

    /// Milliseconds on a scale centred at 2⁶² on [`BASE`], so that an instant *before* the base
    /// (another runtime's paused clock, say, set the base later) still gets its own distinct time
    /// rather than saturating to the base: ages are differences and stay right either side.
    fn now_ms(&self) -> u64 {
        let now = Instant::now();
        scaled_ms(now, *BASE.get_or_init(|| now))
    }

    fn slot(i: u64) -> (usize, u64) {
        let i = i % RING;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Records a successful attempt. Before the first error this is one relaxed load.
    ///
    /// ```
    /// static A: llm_retry_runtime::Adaptive = llm_retry_runtime::Adaptive::new();
    /// A.record_success();
    /// assert_eq!(A.error_rate(), 0.0);
    /// ```
    pub fn record_success(&self) {
        if self.last_error.load(Relaxed) == 0 {
            return;
        }
        let (w, bit) = Adaptive::slot(self.head.fetch_add(1, Relaxed));
        if self.bits[w].load(Relaxed) & bit != 0 {
            self.bits[w].fetch_and(!bit, Relaxed);
        }
    }

    /// Records a failed attempt (the engine records the retryable ones). Reads the clock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// static A: llm_retry_runtime::Adaptive = llm_retry_runtime::Adaptive::new();
    /// A.record_error();
    /// assert_eq!(A.error_rate(), 1.0 / 128.0);
    /// # }
    /// ```
    pub fn record_error(&self) {
        let now = self.now_ms().saturating_add(1);
        let last = self.last_error.swap(now, Relaxed);
        if last != 0 && now.saturating_sub(last) > self.window_ms() {
            // Errors from before a quiet window say nothing about now.
            self.bits[0].store(0, Relaxed);
            self.bits[1].store(0, Relaxed);
        }
        let (w, bit) = Adaptive::slot(self.head.fetch_add(1, Relaxed));
        self.bits[w].fetch_or(bit, Relaxed);
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }

    /// The share of failures among the last 128 attempts (counted since the first error).
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Adaptive::new().error_rate(), 0.0);
    /// ```
    pub fn error_rate(&self) -> f64 {
        let errors = self.bits[0].load(Relaxed).count_ones() + self.bits[1].load(Relaxed).count_ones();
        f64::from(errors) / RING as f64
    }

    /// The factor the back-off delay is multiplied by now, in `1.0..=max_multiplier`. Reads
    /// the clock once the endpoint has failed.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Adaptive::new().multiplier(), 1.0);
    /// ```
    pub fn multiplier(&self) -> f64 {
        let last = self.last_error.load(Relaxed);
        if last == 0 {
            return 1.0;
        }
        let age = self.now_ms().saturating_add(1).saturating_sub(last);
        let window = self.window_ms().max(1);
        if age >= window {
            return 1.0;
        }
        let fade = 1.0 - age as f64 / window as f64;
        1.0 + (self.max_multiplier - 1.0) * self.error_rate() * fade
    }

    /// `delay` times the [`multiplier`](Self::multiplier), saturating.
    ///
    /// ```
    /// let d = std::time::Duration::from_secs(1);
    /// assert_eq!(llm_retry_runtime::Adaptive::new().scale(d), d);
    /// ```
    pub fn scale(&self, delay: Duration) -> Duration {
        let m = self.multiplier();
        if m <= 1.0 {
            return delay;
        }
        Duration::try_from_secs_f64(delay.as_secs_f64() * m).unwrap_or(Duration::MAX)
    }
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive::new()
    }
}

impl fmt::Debug for Adaptive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adaptive")
            .field("window", &self.window)
            .field("max_multiplier", &self.max_multiplier)
            .field("error_rate", &self.error_rate())
            .finish()
    }
}

impl AdaptiveBuilder {
    /// The multiplier at a 100% error rate, in `1.0..=100.0`.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Adaptive::builder().max_multiplier(2.0).build().is_ok());
    /// ```
    pub const fn max_multiplier(mut self, m: f64) -> Self {
        self.max_multiplier = m;
        self
    }

    /// How long the last error keeps raising the delay once traffic stops: above zero, at
    /// most a day.
    ///
    /// ```
    /// let b = llm_retry_runtime::Adaptive::builder().window(std::time::Duration::ZERO);
    /// assert!(b.build().is_err());
    /// ```
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The adaptive state, or why the arguments are wrong.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Adaptive::builder().build().is_ok());
    /// ```
    pub const fn build(self) -> Result<Adaptive, LimitError> {
        if !(self.max_multiplier >= 1.0 && self.max_multiplier <= 100.0) {
            return Err(LimitError::InvalidMultiplier);
        }
        if self.window.is_zero() || self.window.as_secs() > 86_400 {
            return Err(LimitError::InvalidWindow);
        }
        Ok(Adaptive::with(self.window, self.max_multiplier))
    }
}

/// `now` in whole milliseconds on a scale centred at 2⁶² on `base`, rounded down on both sides
/// of it: `base - 0.5 ms` is `MID - 1`, `base + 0.5 ms` is `MID`. (Rounding the distance below
/// the base down, towards the base, made an age that spans the base 1 ms short.)
fn scaled_ms(now: Instant, base: Instant) -> u64 {
    const MID: u64 = 1 << 62;
    let ms = |nanos: u128| u64::try_from(nanos / 1_000_000).unwrap_or(u64::MAX);
    let ms_up = |nanos: u128| u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX);
    if now >= base {
        MID.saturating_add(ms((now - base).as_nanos()))
    } else {
        MID.saturating_sub(ms_up((base - now).as_nanos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn successes_push_errors_out_of_the_ring() {
        let a = Adaptive::new();
        for _ in 0..128 {
            a.record_error();
        }
        assert_eq!(a.multiplier(), 3.0);
        for _ in 0..64 {
            a.record_success();
        }
        assert_eq!(a.error_rate(), 0.5);
        for _ in 0..64 {
            a.record_success();
        }
        assert_eq!(a.multiplier(), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_fade_with_time_and_a_quiet_window_resets_the_ring() {
        let a = Adaptive::new();
        for _ in 0..128 {
            a.record_error();
        }
        tokio::time::advance(Duration::from_secs(150)).await;
        assert!((a.multiplier() - 2.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_secs(151)).await;
        assert_eq!(a.multiplier(), 1.0);
        a.record_error();
        assert_eq!(a.error_rate(), 1.0 / 128.0);
    }

    /// Whole milliseconds, rounded down on either side of the base: an age that spans the base
    /// is as long as one that does not.
    #[test]
    fn the_scale_rounds_down_either_side_of_the_base() {
        let base = Instant::now() + Duration::from_secs(10);
        let at = |micros: i64| {
            let d = Duration::from_micros(micros.unsigned_abs());
            scaled_ms(if micros < 0 { base - d } else { base + d }, base)
        };
        let mid = 1u64 << 62;
        assert_eq!(
            (at(-1_500), at(-1_000), at(-500), at(0), at(500), at(1_000)),
            (mid - 2, mid - 1, mid - 1, mid, mid, mid + 1)
        );
        // floor(t / 1 ms) at every t, so an age (a difference) that spans the base is not shortened.
        for micros in (-3_000..3_000).step_by(100) {
            assert_eq!(at(micros), mid.wrapping_add_signed(micros.div_euclid(1_000)), "{micros} µs");
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        for m in [f64::NAN, 0.99, 101.0, f64::INFINITY] {
            assert_eq!(Adaptive::builder().max_multiplier(m).build().unwrap_err(), LimitError::InvalidMultiplier);
        }
        let day = Duration::from_secs(86_401);
        assert_eq!(Adaptive::builder().window(day).build().unwrap_err(), LimitError::InvalidWindow);
    }
}

#[cfg(test)]
mod base_tests {
    use super::*;

    /// Regression: the time base is process-wide, and a runtime whose paused clock is behind it
    /// (another test's runtime set it later) read a frozen clock, so errors never faded.
    #[test]
    fn a_clock_behind_the_shared_base_still_ages_errors() {
        let ahead = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        ahead.block_on(async {
            tokio::time::advance(Duration::from_secs(10 * 3600)).await;
            // Sets the base, if no one has yet, ten hours ahead of the runtime below.
            let _ = Adaptive::new().now_ms();
        });
        let behind = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        behind.block_on(async {
            let a = Adaptive::new();
            for _ in 0..128 {
                a.record_error();
            }
            tokio::time::advance(Duration::from_secs(150)).await;
            assert!((a.multiplier() - 2.0).abs() < 1e-9, "{}", a.multiplier());
            tokio::time::advance(Duration::from_secs(151)).await;
            assert_eq!(a.multiplier(), 1.0);
        });
    }
}
