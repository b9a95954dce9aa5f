//! What the endpoint's shared controls (limiter, budget, adaptive) hear: only attempts whose
//! request went out. An attempt cut short while it queued for the limiter never reached the
//! server, so it must not move their state.

use llm_retry_runtime::{
    Adaptive, ApiError, Backoff, Budget, ErrorKind, Jitter, Limiter, Policy, RetryExt, limits::LimiterStats,
    stats::Site,
};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

const POLICY: Policy = match Policy::builder()
    .max_attempts(3)
    .backoff(Backoff::Fixed { delay: Duration::from_millis(400) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};

/// Throttles `limiter` until it gates at its floor: the first throttle arms it, and one a
/// measured bucket later, with nothing admitted, cuts it to the floor.
async fn gate_at_floor(limiter: &'static Limiter, floor: f64) {
    limiter.record(true);
    tokio::time::sleep(1_100 * MS).await;
    limiter.record(true);
    assert_eq!(limiter.rate(), Some(floor));
}

/// The limiter's model of the server: everything but its own queue counters.
fn model(s: LimiterStats) -> (Option<f64>, Option<f64>, u64) {
    (s.rate, s.measured_rate, s.throttles)
}

/// Regression, and the class: 16 calls of 3 attempts each over about a second, every attempt
/// cut by its 10 ms timeout while it queued (a token every 100 s), so no body ran. The limiter
/// used to count each as an admitted response (it "measured" tens a second and probed
/// upwards), the adaptive delay counted each as an error, and the budget paid for each retry.
/// None of them may move.
#[tokio::test(start_paused = true)]
async fn attempts_cut_in_the_limiter_queue_leave_every_control_unchanged() {
    static LIMITER: Limiter = Limiter::from_config(match Limiter::builder("controls::queued").min_rate(0.01).build() {
        Ok(c) => c,
        Err(_) => panic!(),
    });
    static BUDGET: Budget = Budget::new();
    static ADAPTIVE: Adaptive = Adaptive::new();
    static SITE: Site = Site::new("controls::queued", POLICY);
    gate_at_floor(&LIMITER, 0.01).await;
    // Let the bucket's first token be taken, so that every attempt below has to queue.
    LIMITER.acquire().await;
    let before = (model(LIMITER.stats()), BUDGET.stats(), ADAPTIVE.error_rate(), ADAPTIVE.multiplier());

    let bodies = &AtomicU32::new(0);
    let calls = (0..16u64).map(|i| async move {
        // Spread over 0.75 s, so the attempts cross the limiter's 0.5 s measurement buckets.
        tokio::time::sleep(Duration::from_millis(50 * i)).await;
        POLICY
            .call::<(), ApiError>()
            .site(&SITE)
            .limiter(&LIMITER)
            .budget(&BUDGET)
            .adaptive(&ADAPTIVE)
            .attempt_timeout(10 * MS)
            .retry(move || async move {
                bodies.fetch_add(1, Relaxed);
                Ok(())
            })
            .await
    });
    let results = futures_util::future::join_all(calls).await;

    assert_eq!(bodies.load(Relaxed), 0, "no attempt reached the server");
    assert!(results.iter().all(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::Timeout)));
    assert_eq!(SITE.stats().attempts, 0, "no attempt started its body");
    let after = (model(LIMITER.stats()), BUDGET.stats(), ADAPTIVE.error_rate(), ADAPTIVE.multiplier());
    assert_eq!(after, before);
    assert_eq!(LIMITER.stats().queued, 0);
}

/// The same controls do hear attempts that reached the server: the check above is not
/// vacuous. A served attempt that times out is an error to the adaptive delay and a retry to
/// the budget.
#[tokio::test(start_paused = true)]
async fn attempts_that_reach_the_server_are_heard() {
    static LIMITER: Limiter = Limiter::new("controls::sent");
    static BUDGET: Budget = Budget::new();
    static ADAPTIVE: Adaptive = Adaptive::new();
    let out: Result<(), ApiError> = POLICY
        .call()
        .limiter(&LIMITER)
        .budget(&BUDGET)
        .adaptive(&ADAPTIVE)
        .attempt_timeout(10 * MS)
        .retry(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    assert!(out.is_err());
    assert_eq!(BUDGET.stats().retries_allowed, 2);
    assert!(ADAPTIVE.error_rate() > 0.0);
}
