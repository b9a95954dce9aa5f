//! Property tests: for any parameters and any attempt number, no delay exceeds the cap, the
//! delay before jitter never decreases, and nothing panics.

use llm_retry_runtime::{Backoff, Jitter, Policy, backoff::jittered};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::time::Duration;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000).prop_map(Duration::from_millis),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(0.0),
        Just(1.0),
        -10.0..10.0f64,
        1.0..1e6f64,
    ]
}

fn backoff() -> impl Strategy<Value = Backoff> {
    prop_oneof![
        Just(Backoff::None),
        duration().prop_map(|delay| Backoff::Fixed { delay }),
        (duration(), duration(), duration()).prop_map(|(base, increment, max_delay)| Backoff::Linear {
            base,
            increment,
            max_delay
        }),
        (duration(), float(), duration(), duration()).prop_map(|(base, multiplier, min_delay, max_delay)| {
            Backoff::Exponential { base, multiplier, min_delay, max_delay }
        }),
        (duration(), duration()).prop_map(|(base, max_delay)| Backoff::Decorrelated { base, max_delay }),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        float().prop_map(|factor| Jitter::Proportional { factor }),
    ]
}

fn attempt() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(1000), Just(10_000), Just(u32::MAX), any::<u32>()]
}

proptest! {
    // Invalid backoffs are filtered out of the monotonicity property; allow for them.
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn no_delay_exceeds_the_cap(b in backoff(), j in jitter(), n in attempt(), prev in duration(), seed in any::<u64>()) {
        let mut rng = SmallRng::seed_from_u64(seed);
        prop_assert!(b.base_delay(n) <= b.cap());
        prop_assert!(jittered(&j, &b, n, prev, &mut rng) <= b.cap());
    }

    #[test]
    fn the_delay_before_jitter_never_decreases(b in backoff(), n in attempt()) {
        // Only valid backoffs promise monotonicity: the builder rejects the rest.
        prop_assume!(Policy::builder().backoff(b).build().is_ok());
        let m = n.saturating_add(1);
        prop_assert!(b.base_delay(n) <= b.base_delay(m), "{:?} at {} > at {}", b, n, m);
    }

    #[test]
    fn building_any_policy_never_panics(b in backoff(), j in jitter(), max in any::<u32>(), cap in duration()) {
        let built = Policy::builder().backoff(b).jitter(j).max_attempts(max).max_retry_after(cap).build();
        if max == 0 || cap.is_zero() {
            prop_assert!(built.is_err());
        }
    }
}

#[test]
fn decorrelated_mean_matches_the_formula() {
    // From a fresh start (previous = base) each draw is U(base, 3·base): mean 2·base.
    let b = Backoff::Decorrelated { base: Duration::from_millis(100), max_delay: Duration::from_secs(60) };
    let mut rng = SmallRng::seed_from_u64(5);
    let mean: f64 = (0..10_000)
        .map(|_| jittered(&Jitter::Decorrelated, &b, 1, Duration::ZERO, &mut rng).as_secs_f64())
        .sum::<f64>()
        / 10_000.0;
    assert!((mean - 0.2).abs() < 0.004, "{mean}");
}

#[test]
fn defaults_are_the_documented_llm_defaults() {
    let p = Policy::DEFAULT;
    assert_eq!(p.max_attempts(), 4);
    assert_eq!(p.backoff(), Backoff::DEFAULT_EXPONENTIAL);
    assert_eq!(p.jitter(), Jitter::Full);
    assert_eq!(p.max_retry_after(), Duration::from_secs(120));
    let delays: Vec<_> = (1..=7).map(|n| p.backoff().base_delay(n).as_millis()).collect();
    assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16_000, 20_000]);
}
