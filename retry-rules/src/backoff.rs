//! Backoff and jitter, as descriptions: how the delay before a retry grows with the retry
//! number, and how randomness spreads it. The formulas before jitter are pure functions of
//! the retry number; drawing the jitter is the runtime's. Every result is clamped to the cap,
//! and no input overflows or panics.

use crate::error::{MAX_JITTER_FACTOR, Problem};
use std::time::Duration;

/// How the delay before a retry grows with the retry number, before jitter.
///
/// Every variant has a cap: no delay, jitter included, ever exceeds it.
///
/// ```
/// use llm_retry_rules::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::Exponential {
///     base: Duration::from_millis(500),
///     multiplier: 2.0,
///     min_delay: Duration::ZERO,
///     max_delay: Duration::from_secs(8),
/// };
/// assert_eq!(b.base_delay(1), Duration::from_millis(500));
/// assert_eq!(b.base_delay(3), Duration::from_secs(2));
/// assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(8));
/// assert_eq!(b.cap(), Duration::from_secs(8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// The same delay before every retry.
    Fixed {
        /// The delay.
        delay: Duration,
    },
    /// `base + increment·(n−1)` before retry `n`, capped at `max_delay`.
    Linear {
        /// The delay before the first retry.
        base: Duration,
        /// Added for each further retry.
        increment: Duration,
        /// The cap.
        max_delay: Duration,
    },
    /// `base·multiplierⁿ⁻¹` before retry `n`, clamped to `[min_delay, max_delay]`.
    Exponential {
        /// The delay before the first retry.
        base: Duration,
        /// The growth factor, at least 1.
        multiplier: f64,
        /// The floor.
        min_delay: Duration,
        /// The cap.
        max_delay: Duration,
    },
    /// AWS's "decorrelated jitter": each delay is drawn from `U(base, 3·previous)`, capped.
    /// Before jitter the delay is `base`; the jitter is always [`Jitter::Decorrelated`].
    Decorrelated {
        /// The smallest delay, and the first one's lower bound.
        base: Duration,
        /// The cap.
        max_delay: Duration,
    },
}

/// How randomness spreads the delays of many clients so that they do not come back together.
///
/// ```
/// use llm_retry_rules::Jitter;
/// assert_eq!(Jitter::DEFAULT_PROPORTIONAL_FACTOR, 0.25);
/// assert_ne!(Jitter::Full, Jitter::Equal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// The delay as computed.
    None,
    /// `U(0, d)`.
    Full,
    /// `d/2 + U(0, d/2)`.
    Equal,
    /// `d + d·factor·U(0, 1)`, capped.
    Proportional {
        /// How far above `d` the delay may go, as a fraction of `d`.
        factor: f64,
    },
    /// `min(cap, U(base, 3·previous))`.
    Decorrelated,
}

/// `d · x` for a finite, non-negative `x`, saturating at `cap` (which a NaN, negative or
/// infinite `x` also gives).
///
/// ```
/// use llm_retry_rules::backoff::scale;
/// use std::time::Duration;
/// let cap = Duration::from_secs(10);
/// assert_eq!(scale(Duration::from_secs(2), 1.5, cap), Duration::from_secs(3));
/// assert_eq!(scale(Duration::from_secs(2), f64::NAN, cap), cap);
/// ```
pub fn scale(d: Duration, x: f64, cap: Duration) -> Duration {
    let secs = d.as_secs_f64() * x;
    if secs.is_finite() && secs >= 0.0 { Duration::try_from_secs_f64(secs).map_or(cap, |v| v.min(cap)) } else { cap }
}

impl Backoff {
    /// The default exponential backoff: 500 ms doubling up to 20 s.
    pub const DEFAULT_EXPONENTIAL: Backoff = Backoff::Exponential {
        base: Duration::from_millis(500),
        multiplier: 2.0,
        min_delay: Duration::ZERO,
        max_delay: Duration::from_secs(20),
    };
    /// The default fixed backoff: 1 s.
    pub const DEFAULT_FIXED: Backoff = Backoff::Fixed { delay: Duration::from_secs(1) };
    /// The default linear backoff: 500 ms, plus 500 ms per retry, up to 20 s.
    pub const DEFAULT_LINEAR: Backoff = Backoff::Linear {
        base: Duration::from_millis(500),
        increment: Duration::from_millis(500),
        max_delay: Duration::from_secs(20),
    };
    /// The default decorrelated backoff: from 500 ms, up to 20 s.
    pub const DEFAULT_DECORRELATED: Backoff =
        Backoff::Decorrelated { base: Duration::from_millis(500), max_delay: Duration::from_secs(20) };

    /// Whether this backoff is valid: delays that grow from a non-zero start (a linear one may
    /// start at zero) to a non-zero cap at least that start, a floor no higher than the cap, and
    /// a finite multiplier of at least 1.
    ///
    /// ```
    /// use llm_retry_rules::{Backoff, Problem};
    /// use std::time::Duration;
    /// assert_eq!(Backoff::DEFAULT_EXPONENTIAL.check(), Ok(()));
    /// let inverted = Backoff::Decorrelated { base: Duration::from_secs(2), max_delay: Duration::from_secs(1) };
    /// assert_eq!(inverted.check(), Err(Problem::MaxDelayBelowBase));
    /// ```
    pub const fn check(&self) -> Result<(), Problem> {
        let (base, max_delay) = match *self {
            Backoff::None => return Ok(()),
            Backoff::Fixed { delay } => return if delay.is_zero() { Err(Problem::ZeroDelay) } else { Ok(()) },
            Backoff::Linear { base, max_delay, .. } => (base, max_delay),
            Backoff::Exponential { base, max_delay, .. } => (base, max_delay),
            Backoff::Decorrelated { base, max_delay } => (base, max_delay),
        };
        if base.is_zero() && !matches!(self, Backoff::Linear { .. }) {
            return Err(Problem::ZeroBase);
        }
        if max_delay.is_zero() {
            return Err(Problem::ZeroMaxDelay);
        }
        if max_delay.as_nanos() < base.as_nanos() {
            return Err(Problem::MaxDelayBelowBase);
        }
        if let Backoff::Exponential { multiplier, min_delay, .. } = *self {
            if !(multiplier >= 1.0 && multiplier.is_finite()) {
                return Err(Problem::InvalidMultiplier);
            }
            if min_delay.as_nanos() > max_delay.as_nanos() {
                return Err(Problem::MinDelayAboveMaxDelay);
            }
        }
        Ok(())
    }

    /// The cap: no delay from this backoff exceeds it, jitter included.
    ///
    /// ```
    /// use llm_retry_rules::Backoff;
    /// assert_eq!(Backoff::None.cap(), std::time::Duration::ZERO);
    /// ```
    pub const fn cap(&self) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed { delay } => delay,
            Backoff::Linear { max_delay, .. }
            | Backoff::Exponential { max_delay, .. }
            | Backoff::Decorrelated { max_delay, .. } => max_delay,
        }
    }

    /// The smallest delay this backoff produces before jitter (the first one).
    ///
    /// ```
    /// use llm_retry_rules::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::Decorrelated { base: Duration::from_millis(100), max_delay: Duration::from_secs(5) };
    /// assert_eq!(b.base(), Duration::from_millis(100));
    /// ```
    pub fn base(&self) -> Duration {
        self.base_delay(1)
    }

    /// The delay before retry `n` (1-based), before jitter. It never decreases as `n` grows
    /// and never exceeds [`cap`](Self::cap). `n = 0` is treated as 1.
    ///
    /// ```
    /// use llm_retry_rules::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::Linear {
    ///     base: Duration::from_secs(1),
    ///     increment: Duration::from_secs(2),
    ///     max_delay: Duration::from_secs(6),
    /// };
    /// assert_eq!(b.base_delay(2), Duration::from_secs(3));
    /// assert_eq!(b.base_delay(100), Duration::from_secs(6));
    /// ```
    pub fn base_delay(&self, n: u32) -> Duration {
        let steps = n.saturating_sub(1);
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed { delay } => delay,
            Backoff::Linear { base, increment, max_delay } => {
                base.saturating_add(increment.saturating_mul(steps)).min(max_delay)
            }
            Backoff::Exponential { base, multiplier, min_delay, max_delay } => {
                let exp = i32::try_from(steps).unwrap_or(i32::MAX);
                let factor = multiplier.powi(exp);
                let factor = if factor.is_nan() { f64::INFINITY } else { factor };
                scale(base, factor, max_delay).max(min_delay).min(max_delay)
            }
            Backoff::Decorrelated { base, max_delay } => base.min(max_delay),
        }
    }
}

impl Jitter {
    /// The default factor of [`Jitter::Proportional`]: up to 25% above the delay.
    pub const DEFAULT_PROPORTIONAL_FACTOR: f64 = 0.25;

    /// Whether this jitter is valid: a proportional factor is a number from 0 to
    /// [`MAX_JITTER_FACTOR`].
    ///
    /// ```
    /// use llm_retry_rules::{Jitter, Problem};
    /// assert_eq!(Jitter::Proportional { factor: 0.25 }.check(), Ok(()));
    /// assert_eq!(Jitter::Proportional { factor: f64::NAN }.check(), Err(Problem::InvalidJitterFactor));
    /// ```
    pub const fn check(&self) -> Result<(), Problem> {
        match *self {
            Jitter::Proportional { factor } if !(factor >= 0.0 && factor <= MAX_JITTER_FACTOR) => {
                Err(Problem::InvalidJitterFactor)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn exp() -> Backoff {
        Backoff::Exponential { base: 100 * MS, multiplier: 2.0, min_delay: Duration::ZERO, max_delay: 10 * 1000 * MS }
    }

    #[test]
    fn exponential_grows_then_caps() {
        let b = exp();
        let got: Vec<_> = (1..=9).map(|n| b.base_delay(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
        for n in [1000, 10_000, u32::MAX] {
            assert_eq!(b.base_delay(n), 10 * 1000 * MS);
        }
    }

    #[test]
    fn exponential_respects_min_delay() {
        let b = Backoff::Exponential { base: MS, multiplier: 1.0, min_delay: 50 * MS, max_delay: 100 * MS };
        assert_eq!(b.base_delay(1), 50 * MS);
    }

    #[test]
    fn linear_and_fixed_saturate() {
        let b = Backoff::Linear { base: Duration::MAX, increment: Duration::MAX, max_delay: Duration::from_secs(60) };
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(60));
        let f = Backoff::Fixed { delay: 3 * MS };
        assert_eq!(f.base_delay(u32::MAX), 3 * MS);
        assert_eq!(Backoff::None.base_delay(7), Duration::ZERO);
    }
}
