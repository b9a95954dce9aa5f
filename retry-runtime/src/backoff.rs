//! Drawing the jitter: the delay before retry `n` under a [`Backoff`] and a [`Jitter`], from a
//! random draw. The descriptions themselves are the rulebook's (`llm_retry_rules::backoff`).

use crate::{Backoff, Jitter};
use llm_retry_rules::backoff::scale;
use rand::RngExt;
use std::time::Duration;

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut impl rand::Rng) -> f64 {
    rng.random::<f64>()
}

/// The delay before retry `n` under `backoff`, with `jitter` drawn from `rng`.
///
/// `previous` is the delay before the previous retry (zero before the first), used by
/// decorrelated jitter. The result never exceeds `backoff.cap()`.
///
/// ```
/// use llm_retry_runtime::{Backoff, Jitter, backoff::jittered};
/// use rand::SeedableRng;
/// use std::time::Duration;
///
/// let b = Backoff::Fixed { delay: Duration::from_secs(1) };
/// let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
/// let d = jittered(&Jitter::Equal, &b, 1, Duration::ZERO, &mut rng);
/// assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
/// ```
pub fn jittered(jitter: &Jitter, backoff: &Backoff, n: u32, previous: Duration, rng: &mut impl rand::Rng) -> Duration {
    let cap = backoff.cap();
    if let Backoff::Decorrelated { .. } = backoff {
        return decorrelated(backoff.base(), previous, cap, rng);
    }
    let d = backoff.base_delay(n);
    let out = match *jitter {
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
        Backoff::Exponential { base: 100 * MS, multiplier: 2.0, min_delay: Duration::ZERO, max_delay: 10 * 1000 * MS }
    }

    fn mean(j: Jitter, b: &Backoff, n: u32) -> f64 {
        let mut rng = SmallRng::seed_from_u64(42);
        let mut prev = Duration::ZERO;
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let d = jittered(&j, b, n, prev, &mut rng);
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
    fn jitter_means_over_10k_seeded_samples() {
        let b = Backoff::Fixed { delay: Duration::from_secs(1) };
        let close = |a: f64, e: f64| (a - e).abs() < 0.02 * e.max(0.01);
        assert!(close(mean(Jitter::None, &b, 1), 1.0));
        assert!(close(mean(Jitter::Full, &b, 1), 0.5), "{}", mean(Jitter::Full, &b, 1));
        assert!(close(mean(Jitter::Equal, &b, 1), 0.75), "{}", mean(Jitter::Equal, &b, 1));
        // Proportional on a fixed delay is capped at the delay itself.
        assert!(close(mean(Jitter::Proportional { factor: 0.5 }, &b, 1), 1.0));
        let wide = Backoff::Exponential {
            base: Duration::from_secs(1),
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
                let full = jittered(&Jitter::Full, &b, n, Duration::ZERO, &mut rng);
                assert!(full <= d);
                let eq = jittered(&Jitter::Equal, &b, n, Duration::ZERO, &mut rng);
                assert!(eq >= d / 2 && eq <= d);
                let p = jittered(&Jitter::Proportional { factor: 0.3 }, &b, n, Duration::ZERO, &mut rng);
                assert!(p >= d && p <= b.cap());
                let dec = jittered(&Jitter::Decorrelated, &b, n, d, &mut rng);
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
            let d = jittered(&Jitter::Decorrelated, &b, n, prev, &mut rng);
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
                base: Duration::MAX,
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
                    assert!(jittered(&j, &b, n, Duration::MAX, &mut rng) <= b.cap());
                }
            }
        }
    }
}
