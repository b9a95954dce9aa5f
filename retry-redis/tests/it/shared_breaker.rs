//! `Breaker::share` against a real redis-server: two workers (two breakers of one name, each
//! with a connection of its own, as two processes would have) open together on the fleet's
//! failures, and when the cooldown is over exactly one call of the whole fleet probes.

use crate::common::{server, store};
use llm_retry_runtime::failover::{Breaker, BreakerState, Fallback, Route, Target};
use llm_retry_runtime::store::Sharing;
use llm_retry_runtime::{ApiError, Policy, RetryExt};
use std::time::Duration;

const COOLDOWN: Duration = Duration::from_millis(300);

fn breaker() -> &'static Breaker {
    let b = Breaker::builder("shared-gpt").consecutive_failures(3).cooldown(COOLDOWN).build();
    Box::leak(Box::new(b.expect("valid settings")))
}

/// One attempt of one call on `target`: `Some(ok)` if its breaker let it go.
fn attempt(target: &'static Target, ok: bool) -> Option<bool> {
    let targets: &'static [&'static Target] = Box::leak(Box::new([target]));
    let policy: &'static Policy = Box::leak(Box::new(Policy::builder().max_attempts(1).build().unwrap()));
    let mut call = policy.call::<(), ApiError>();
    let mut route = Route::new(Fallback::new(targets).unwrap());
    call.next_target(&mut route).ok()?;
    let result = if ok { Ok(()) } else { Err(ApiError::from_status(503)) };
    let _ = call.settle_target(&mut route, result);
    Some(ok)
}

/// Lets the reports' tasks reach the store and their answers come back.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_opens_together_and_probes_once() {
    let Some(server) = server("the_fleet_opens_together_and_probes_once") else { return };
    let (a, b) = (breaker(), breaker());
    assert!(a.share(store(&server).await).is_ok());
    assert!(b.share(store(&server).await).is_ok());
    let ta: &'static Target = Box::leak(Box::new(Target::new("gpt (worker a)").breaker(a)));
    let tb: &'static Target = Box::leak(Box::new(Target::new("gpt (worker b)").breaker(b)));

    // Two failures here, one there: three in a row for the fleet. Neither alone has three.
    attempt(ta, false).unwrap();
    settle().await;
    attempt(ta, false).unwrap();
    settle().await;
    assert_eq!(a.state(), BreakerState::Closed);
    attempt(tb, false).unwrap();
    settle().await;
    assert_eq!(b.state(), BreakerState::Open, "the fleet's third failure opens it");
    assert_eq!(b.stats().mode, Sharing::Shared);
    // Worker a hears of it with its next outcome.
    attempt(ta, true).unwrap();
    settle().await;
    assert_eq!(a.state(), BreakerState::Open, "the fleet's state reaches every worker");
    assert!(attempt(ta, true).is_none() && attempt(tb, true).is_none(), "open: both refuse");

    // The cooldown ends: many calls from both workers, one probe in the whole fleet.
    tokio::time::sleep(COOLDOWN + Duration::from_millis(20)).await;
    let mut went = 0;
    for _ in 0..10 {
        for t in [ta, tb] {
            // Probes that go do not settle yet: the probe is in flight.
            let targets: &'static [&'static Target] = Box::leak(Box::new([t]));
            let mut call = Policy::DEFAULT.call::<(), ApiError>();
            let mut route = Route::new(Fallback::new(targets).unwrap());
            if call.next_target(&mut route).is_ok() {
                went += 1;
                // Held for the rest of the test: its probe stays in flight.
                Box::leak(Box::new((call, route)));
            }
        }
        settle().await;
    }
    assert_eq!(went, 1, "exactly one probe in the fleet");
    assert_eq!(a.stats().probes + b.stats().probes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_success_closes_it_for_the_fleet() {
    let Some(server) = server("the_probes_success_closes_it_for_the_fleet") else { return };
    let (a, b) = (breaker(), breaker());
    assert!(a.share(store(&server).await).is_ok());
    assert!(b.share(store(&server).await).is_ok());
    let ta: &'static Target = Box::leak(Box::new(Target::new("a").breaker(a)));
    let tb: &'static Target = Box::leak(Box::new(Target::new("b").breaker(b)));
    for _ in 0..3 {
        attempt(ta, false).unwrap();
        settle().await;
    }
    assert_eq!(a.state(), BreakerState::Open);
    tokio::time::sleep(COOLDOWN + Duration::from_millis(20)).await;
    // The first call to find the cooldown over asks the store for the probe and is refused;
    // the next one goes as the fleet's probe, and succeeds.
    assert!(attempt(ta, true).is_none());
    settle().await;
    assert_eq!(attempt(ta, true), Some(true));
    settle().await;
    assert_eq!(a.state(), BreakerState::Closed);
    // Worker b never saw it open: its calls go, and it hears the fleet is closed.
    assert_eq!(attempt(tb, true), Some(true));
    settle().await;
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_breaker_decides_alone() {
    let Some(mut server) = server("without_redis_the_breaker_decides_alone") else { return };
    let a = breaker();
    assert!(a.share(store(&server).await).is_ok());
    let ta: &'static Target = Box::leak(Box::new(Target::new("a").breaker(a)));
    server.kill().unwrap();
    for _ in 0..3 {
        attempt(ta, false).unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert_eq!(a.stats().mode, Sharing::Fallback);
    assert_eq!(a.state(), BreakerState::Open, "its own three failures open it");
    tokio::time::sleep(COOLDOWN + Duration::from_millis(20)).await;
    // Alone, it probes by itself: the store's probe cannot be asked for.
    assert_eq!(attempt(ta, true), Some(true));
    assert_eq!(a.stats().probes, 1);
    // Its outcome is counted here once the store has failed to answer for it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(a.state(), BreakerState::Closed);
}
