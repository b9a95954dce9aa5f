//! The client-side limiter against a simulated provider that admits C requests a second (a
//! token bucket) and answers the rest with 429 and a Retry-After, in paused time with seeded
//! Poisson arrivals at twice C.
//!
//! Prints the convergence figures quoted in docs/RELIABILITY.md:
//! `cargo test -p llm-retry-runtime --test it limiter:: -- --nocapture`

use llm_retry_runtime::{ApiError, Limiter, Policy, RetryExt, http::RetryAfter, rng::seed_thread_rng};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const POLICY: Policy = match Policy::builder().max_attempts(10).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};

/// A provider's rate limit: GCRA, `rate` a second with room for `burst` at once.
struct Bucket {
    interval: Duration,
    tolerance: Duration,
    tat: Instant,
}

impl Bucket {
    fn new(rate: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / rate;
        Bucket { interval, tolerance: interval * (burst - 1), tat: Instant::now() }
    }

    /// `Ok` to admit, or `Err(wait)` until the next token.
    fn admit(&mut self) -> Result<(), Duration> {
        let now = Instant::now();
        let tat = self.tat.max(now);
        if tat > now + self.tolerance {
            return Err(tat - now - self.tolerance);
        }
        self.tat = tat + self.interval;
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    /// Per second of the run: admitted requests and 429s.
    admitted: Vec<AtomicU64>,
    throttled: Vec<AtomicU64>,
}

struct Figures {
    /// Mean admitted rate over the second half, as a fraction of C.
    admitted: f64,
    /// 429s over all attempts in the second half.
    throttled_share: f64,
    throttled_late: u64,
    /// The limiter's mean rate over the second half, as a fraction of C.
    rate: f64,
    /// First second from which the limiter's rate stays within 0.5–1.5 C.
    settled_at: Option<usize>,
}

async fn run(capacity: u32, secs: usize, seed: u64, limiter: Option<&'static Limiter>) -> Figures {
    seed_thread_rng(seed);
    let mut rng = SmallRng::seed_from_u64(seed);
    let bucket = Arc::new(Mutex::new(Bucket::new(capacity, capacity / 4 + 1)));
    let counts = Arc::new(Counts {
        admitted: (0..secs * 4).map(|_| AtomicU64::new(0)).collect(),
        throttled: (0..secs * 4).map(|_| AtomicU64::new(0)).collect(),
    });
    let start = Instant::now();
    let demand = 2.0 * f64::from(capacity);
    let mut rates = Vec::new();
    let mut t = 0.0;
    let mut next_sample = 1.0;
    let mut tasks = Vec::new();
    while t < secs as f64 {
        t += -(1.0 - rng.random::<f64>()).ln() / demand;
        while next_sample <= t && next_sample <= secs as f64 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(next_sample)).await;
            rates.push(limiter.and_then(|l| l.rate()).unwrap_or(f64::INFINITY));
            next_sample += 1.0;
        }
        tokio::time::sleep_until(start + Duration::from_secs_f64(t)).await;
        let (bucket, counts) = (bucket.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            // `limiter` is an `Option<&'static Limiter>`: a call takes one chosen at run time.
            let call = POLICY.call::<(), ApiError>().limiter(limiter);
            let _ = call
                .retry(|| {
                    // The provider sees the request when the attempt runs, after the limiter.
                    let (bucket, counts) = (bucket.clone(), counts.clone());
                    async move {
                        let second = (Instant::now() - start).as_secs() as usize;
                        let slot = second.min(counts.admitted.len() - 1);
                        let verdict = bucket.lock().unwrap().admit();
                        match verdict {
                            Ok(()) => {
                                counts.admitted[slot].fetch_add(1, Relaxed);
                                Ok(())
                            }
                            Err(wait) => {
                                counts.throttled[slot].fetch_add(1, Relaxed);
                                let hint = RetryAfter::Delay(wait.max(Duration::from_millis(100)));
                                Err(ApiError::from_status(429).with_retry_after(hint))
                            }
                        }
                    }
                })
                .await;
        }));
    }
    // Only the arrival window is measured; calls still queued are cut off, not awaited.
    for t in tasks {
        t.abort();
    }
    let half = secs / 2..secs;
    if std::env::var_os("LIMITER_TRACE").is_some() && limiter.is_some() {
        for i in 0..secs {
            let (a, t) = (counts.admitted[i].load(Relaxed), counts.throttled[i].load(Relaxed));
            println!(
                "t={i:>3} rate={:>7.2} admitted={a:>4} 429={t:>4} {:?}",
                rates.get(i).copied().unwrap_or(0.0),
                limiter.map(|l| l.stats())
            );
        }
    }
    let sum = |v: &[AtomicU64]| -> u64 { v[half.clone()].iter().map(|a| a.load(Relaxed)).sum() };
    let (admitted, throttled) = (sum(&counts.admitted), sum(&counts.throttled));
    let c = f64::from(capacity);
    let within = |r: &f64| (0.5 * c..=1.5 * c).contains(r);
    let settled_at = (0..rates.len()).find(|&i| rates[i..].iter().all(within));
    Figures {
        admitted: admitted as f64 / half.len() as f64 / c,
        throttled_share: throttled as f64 / (admitted + throttled).max(1) as f64,
        throttled_late: throttled,
        rate: rates[half.clone()].iter().sum::<f64>() / half.len() as f64 / c,
        settled_at: settled_at.map(|i| i + 1),
    }
}

#[tokio::test(start_paused = true)]
async fn the_limiter_converges_near_the_providers_rate_and_429s_stop() {
    for capacity in [5, 20, 100] {
        let without = run(capacity, 120, 3, None).await;
        let limiter: &'static Limiter = Box::leak(Box::new(Limiter::new("sim")));
        let with = run(capacity, 120, 3, Some(limiter)).await;
        println!(
            "C = {capacity:>3}/s, demand 2C, 120 s: second half without limiter: {:.0}% of attempts are 429s; \
             with limiter: rate {:.2} C, admitted {:.2} C, 429s {:.1}% of attempts ({} in 60 s), rate within 0.5-1.5 C from {:?} s",
            without.throttled_share * 100.0,
            with.rate,
            with.admitted,
            with.throttled_share * 100.0,
            with.throttled_late,
            with.settled_at,
        );
        assert!(without.throttled_share > 0.4, "the provider is overloaded without a limiter");
        assert!((0.6..=1.2).contains(&with.rate), "rate {:.2} C", with.rate);
        assert!(with.admitted >= 0.6, "admitted {:.2} C", with.admitted);
        assert!(with.throttled_share < 0.1, "429s: {:.1}%", with.throttled_share * 100.0);
        assert!(with.settled_at.is_some_and(|s| s <= 30), "{:?}", with.settled_at);
    }
}

#[tokio::test(start_paused = true)]
async fn an_unthrottled_limiter_stays_off_and_never_delays() {
    static QUIET: Limiter = Limiter::new("quiet");
    let start = Instant::now();
    for _ in 0..1000 {
        let out: Result<(), ApiError> = POLICY.call().limiter(&QUIET).retry(|| async { Ok(()) }).await;
        out.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(QUIET.rate(), None);
    assert_eq!(QUIET.stats().waits, 0);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_paces_at_beta_of_the_send_rate_then_cuts_once_per_overshoot_and_climbs() {
    static L: Limiter = Limiter::new("unit");
    // Slow start: 10 attempts a second for 2 s, each answered at once.
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(100)).await;
        L.acquire().await;
        L.record(false);
    }
    assert_eq!(L.rate(), None, "no rate before the first throttle");
    L.record(true);
    let cut = L.rate().unwrap();
    // β = 0.8 of the send rate, smoothed over about a second: a little under 10/s.
    assert!((0.8 * 7.0..=0.8 * 11.5).contains(&cut), "β = 0.8 of about 10/s, got {cut}");
    // A second throttle within 0.5 s is the same overshoot: no second cut.
    L.record(true);
    assert_eq!(L.rate(), Some(cut));
    // Successes climb back linearly.
    let mut last = cut;
    for _ in 0..40 {
        tokio::time::advance(Duration::from_millis(100)).await;
        L.acquire().await;
        L.record(false);
        let r = L.rate().unwrap();
        assert!(r >= last - 1e-9, "{r} < {last}");
        last = r;
    }
    assert!(last > cut, "{last} <= {cut}");
    // A throttle after the hold cuts by β from the rate in force, or from the rate the
    // provider admitted (here about 10/s) if that is less, but from no less than β of the
    // rate in force.
    let admitted = L.stats().measured_rate.unwrap();
    assert!((9.0..=11.0).contains(&admitted), "{admitted}");
    L.record(true);
    let again = L.rate().unwrap();
    let base = last.min(admitted).max(0.8 * last);
    assert!((again - 0.8 * base).abs() < 1e-6, "{again} vs 0.8 × {base} (rate {last}, admitted {admitted})");
    assert_eq!(L.stats().throttles, 3);
}

#[test]
fn many_tasks_and_threads_share_one_limiter_without_losing_counts() {
    static SHARED: Limiter = Limiter::new("shared");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let throttles = rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                tokio::spawn(async move {
                    let mut n = 0;
                    for j in 0..50 {
                        let throttled = (i + j) % 10 == 0;
                        SHARED.record(throttled);
                        n += u64::from(throttled);
                    }
                    n
                })
            })
            .collect();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                    rt.block_on(async {
                        for k in 0..500u64 {
                            SHARED.record(k % 10 == 0);
                        }
                    });
                    50
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        n + threads.into_iter().map(|t| t.join().unwrap()).sum::<u64>()
    });
    assert_eq!(SHARED.stats().throttles, throttles);
}
