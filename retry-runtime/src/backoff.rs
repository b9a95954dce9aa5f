//! Backoff and jitter formulas. Pure functions of the attempt number, the previous delay and
//! a random draw; every result is clamped to the cap, and no input overflows or panics.

use rand::RngExt;
use std::time::Duration;

/// How the delay before a retry grows with the retry number, before jitter.
///
/// Every variant has a cap: no delay, jitter included, ever exceeds it.
///
/// ```
/// use llm_retry_runtime::Backoff;
/// use std::time::Duration;
///
/// let b = Backoff::Exponential {
///     initial: Duration::from_millis(500),
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
    /// `start + increment·(n−1)` before retry `n`, capped at `max_delay`.
    Linear {
        /// The delay before the first retry.
        start: Duration,
        /// Added for each further retry.
        increment: Duration,
        /// The cap.
        max_delay: Duration,
    },
    /// `initial·multiplierⁿ⁻¹` before retry `n`, clamped to `[min_delay, max_delay]`.
    Exponential {
        /// The delay before the first retry.
        initial: Duration,
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
/// use llm_retry_runtime::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let b = Backoff::Fixed { delay: Duration::from_secs(1) };
/// use rand::SeedableRng;
/// let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
/// let d = Jitter::Equal.apply(&b, 1, Duration::ZERO, &mut rng);
/// assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
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

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut impl rand::Rng) -> f64 {
    rng.random::<f64>()
}

/// `d · x` for a finite, non-negative `x`, saturating at `cap`.
fn scale(d: Duration, x: f64, cap: Duration) -> Duration {
    let secs = d.as_secs_f64() * x;
    if secs.is_finite() && secs >= 0.0 { Duration::try_from_secs_f64(secs).map_or(cap, |v| v.min(cap)) } else { cap }
}

impl Backoff {
    /// The default exponential backoff: 500 ms doubling up to 20 s.
    pub const DEFAULT_EXPONENTIAL: Backoff = Backoff::Exponential {
        initial: Duration::from_millis(500),
        multiplier: 2.0,
        min_delay: Duration::ZERO,
        max_delay: Duration::from_secs(20),
    };
    /// The default fixed backoff: 1 s.
    pub const DEFAULT_FIXED: Backoff = Backoff::Fixed { delay: Duration::from_secs(1) };
    /// The default linear backoff: 500 ms, plus 500 ms per retry, up to 20 s.
    pub const DEFAULT_LINEAR: Backoff = Backoff::Linear {
        start: Duration::from_millis(500),
        increment: Duration::from_millis(500),
        max_delay: Duration::from_secs(20),
    };
    /// The default decorrelated backoff: from 500 ms, up to 20 s.
    pub const DEFAULT_DECORRELATED: Backoff =
        Backoff::Decorrelated { base: Duration::from_millis(500), max_delay: Duration::from_secs(20) };

    /// The cap: no delay from this backoff exceeds it, jitter included.
    ///
    /// ```
    /// use llm_retry_runtime::Backoff;
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
    /// use llm_retry_runtime::Backoff;
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
    /// use llm_retry_runtime::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::Linear {
    ///     start: Duration::from_secs(1),
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
            Backoff::Linear { start, increment, max_delay } => {
                start.saturating_add(increment.saturating_mul(steps)).min(max_delay)
            }
            Backoff::Exponential { initial, multiplier, min_delay, max_delay } => {
                let exp = i32::try_from(steps).unwrap_or(i32::MAX);
                let factor = multiplier.powi(exp);
                let factor = if factor.is_nan() { f64::INFINITY } else { factor };
                scale(initial, factor, max_delay).max(min_delay).min(max_delay)
            }
            Backoff::Decorrelated { base, max_delay } => base.min(max_delay),
        }
    }
}

impl Jitter {
    /// The default factor of [`Jitter::Proportional`]: up to 25% above the delay.
    pub const DEFAULT_PROPORTIONAL_FACTOR: f64 = 0.25;

    /// The delay before retry `n` under `backoff`, with this jitter applied.
    ///
    /// `previous` is the delay before the previous retry (zero before the first), used by
    /// decorrelated jitter. The result never exceeds `backoff.cap()`.
    ///
    /// ```
    /// use llm_retry_runtime::{Backoff, Jitter};
    /// use std::time::Duration;
    /// let b = Backoff::Fixed { delay: Duration::from_secs(2) };
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    /// assert!(Jitter::Full.apply(&b, 5, Duration::ZERO, &mut rng) <= Duration::from_secs(2));
    /// ```
    pub fn apply(&self, backoff: &Backoff, n: u32, previous: Duration, rng: &mut impl rand::Rng) -> Duration {
        let cap = backoff.cap();
        if let Backoff::Decorrelated { .. } = backoff {
            return decorrelated(backoff.base(), previous, cap, rng);
        }
        let d = backoff.base_delay(n);
        let out = match *self {
            Jitter::None => d,
            Jitter::Full => scale(d, unit(rng), cap),
            Jitter::Equal => {
                let half = d / 2;
                half.saturating_add(scale(d - half, unit(rng), cap))
            }
            Jitter::Proportional { factor } => {
                let f = if factor.is_finite() && factor > 0.0 { factor } else { 0.0 };
                d.saturating_add(scale(d, f * unit(rng), cap))
            }
            Jitter::Decorrelated => decorrelated(backoff.base(), previous, cap, rng),
        };
        out.min(cap)
    }
}

/// `min(cap, U(base, 3·previous))`, with `previous` taken as at least `base`: the draw spans
/// the whole range and is clamped afterwards, as in AWS's formula, so a long chain settles at the
/// cap rather than spreading below it.
fn decorrelated(base: Duration, previous: Duration, cap: Duration, rng: &mut impl rand::Rng) -> Duration {
    let base = base.min(cap);
    let hi = previous.max(base).saturating_mul(3);
    let span = hi.saturating_sub(base);
    base.saturating_add(scale(span, unit(rng), Duration::MAX)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::SmallRng};

    const MS: Duration = Duration::from_millis(1);

    fn exp() -> Backoff {
        Backoff::Exponential {
            initial: 100 * MS,
            multiplier: 2.0,
            min_delay: Duration::ZERO,
            max_delay: 10 * 1000 * MS,
        }
    }

    fn mean(j: Jitter, b: &Backoff, n: u32) -> f64 {
        let mut rng = SmallRng::seed_from_u64(42);
        let mut prev = Duration::ZERO;
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let d = j.apply(b, n, prev, &mut rng);
            assert!(d <= b.cap());
            if matches!(j, Jitter::Decorrelated) {
                prev = Duration::ZERO;
            } else {
                prev = d;
            }
            sum += d.as_secs_f64();
        }
        sum / 10_000.0
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
        let b = Backoff::Exponential { initial: MS, multiplier: 1.0, min_delay: 50 * MS, max_delay: 100 * MS };
        assert_eq!(b.base_delay(1), 50 * MS);
    }

    #[test]
    fn linear_and_fixed_saturate() {
        let b = Backoff::Linear { start: Duration::MAX, increment: Duration::MAX, max_delay: Duration::from_secs(60) };
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(60));
        let f = Backoff::Fixed { delay: 3 * MS };
        assert_eq!(f.base_delay(u32::MAX), 3 * MS);
        assert_eq!(Backoff::None.base_delay(7), Duration::ZERO);
    }

    #[test]
    fn jitter_means_over_10k_seeded_samples() {
        let b = Backoff::Fixed { delay: Duration::from_secs(1) };
        let close = |a: f64, e: f64| (a - e).abs() < 0.02 * e.max(0.01);
        assert!(close(mean(Jitter::None, &b, 1), 1.0));
        assert!(close(mean(Jitter::Full, &b, 1), 0.5), "{}", mean(Jitter::Full, &b, 1));
        assert!(close(mean(Jitter::Equal, &b, 1), 0.75), "{}", mean(Jitter::Equal, &b, 1));
        // Proportional on a fixed delay is capped at the delay itself.
        assert!(close(mean(Jitter::Proportional { factor: 0.5 }, &b, 1), 1.0));
        let wide = Backoff::Exponential {
            initial: Duration::from_secs(1),
            multiplier: 1.0,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_secs(10),
        };
        assert!(close(mean(Jitter::Proportional { factor: 0.5 }, &wide, 1), 1.25));
        // Decorrelated from a fresh start: U(base, 3·base) has mean 2·base.
        let dec = Backoff::Decorrelated { base: Duration::from_secs(1), max_delay: Duration::from_secs(100) };
        assert!(close(mean(Jitter::Decorrelated, &dec, 1), 2.0), "{}", mean(Jitter::Decorrelated, &dec, 1));
    }

    #[test]
    fn jitter_bounds() {
        let mut rng = SmallRng::seed_from_u64(9);
        let b = exp();
        for n in [1, 2, 5, 1000, 10_000, u32::MAX] {
            let d = b.base_delay(n);
            for _ in 0..1000 {
                let full = Jitter::Full.apply(&b, n, Duration::ZERO, &mut rng);
                assert!(full <= d);
                let eq = Jitter::Equal.apply(&b, n, Duration::ZERO, &mut rng);
                assert!(eq >= d / 2 && eq <= d);
                let p = Jitter::Proportional { factor: 0.3 }.apply(&b, n, Duration::ZERO, &mut rng);
                assert!(p >= d && p <= b.cap());
                let dec = Jitter::Decorrelated.apply(&b, n, d, &mut rng);
                assert!(dec >= b.base() && dec <= b.cap());
            }
        }
    }

    #[test]
    fn decorrelated_chain_stays_within_base_and_cap() {
        let mut rng = SmallRng::seed_from_u64(3);
        let b = Backoff::Decorrelated { base: 5 * MS, max_delay: Duration::from_secs(2) };
        let mut prev = Duration::ZERO;
        for n in 1..10_000 {
            let d = Jitter::Decorrelated.apply(&b, n, prev, &mut rng);
            assert!(d >= 5 * MS && d <= Duration::from_secs(2));
            assert!(d <= prev.max(5 * MS) * 3);
            prev = d;
        }
    }

    #[test]
    fn hostile_parameters_do_not_panic() {
        let mut rng = SmallRng::seed_from_u64(0);
        for m in [f64::NAN, f64::INFINITY, f64::MAX, 0.0, -1.0] {
            let b = Backoff::Exponential {
                initial: Duration::MAX,
                multiplier: m,
                min_delay: Duration::ZERO,
                max_delay: Duration::MAX,
            };
            for n in [0, 1, 2, u32::MAX] {
                let _ = b.base_delay(n);
                for j in [
                    Jitter::None,
                    Jitter::Full,
                    Jitter::Equal,
                    Jitter::Proportional { factor: f64::NAN },
                    Jitter::Proportional { factor: f64::MAX },
                    Jitter::Decorrelated,
                ] {
                    assert!(j.apply(&b, n, Duration::MAX, &mut rng) <= b.cap());
                }
            }
        }
    }
}
