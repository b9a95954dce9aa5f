//! A limiter that shares its state through a store (`Limiter::share`), against an in-memory
//! fake store: one question per attempt and one sleep, reports sent to the store, the
//! deadline passed along, and local pacing at the shared rate ÷ the fleet while the store is
//! down, back to sharing once it answers. (The Redis store has its own tests, in
//! retry-redis/tests/it, and the fleet's are the facade's tests/fleet.rs.)

use llm_retry_runtime::limits::RateSource;
use llm_retry_runtime::store::{
    Admission, Ask, BreakerAnswer, BreakerOp, Report, Sharing, Store, StoreError, StoreFuture,
};
use llm_retry_runtime::{ApiError, ErrorKind, Limiter, Policy, RetryExt};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A fake store: answers `Go` after `wait` with `rate` and `fleet`, or `Refused` when the wait
/// exceeds the ask's `max_wait`; fails while `down`; records what it is asked and told.
#[derive(Default)]
struct Fake {
    down: AtomicBool,
    wait_ms: AtomicU32,
    busy_first: AtomicU32,
    /// The fleet's size it answers (4 unless set).
    fleet: AtomicU32,
    asks: Mutex<Vec<(f64, Option<Duration>)>>,
    reports: Mutex<Vec<Report>>,
}

#[derive(Clone, Default)]
struct Handle(Arc<Fake>);

impl Store for Handle {
    fn admit<'a>(&'a self, ask: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
        Box::pin(async move {
            let f = &self.0;
            if f.down.load(SeqCst) {
                return Err(StoreError::Timeout);
            }
            f.asks.lock().unwrap().push((ask.tokens, ask.max_wait));
            if f.busy_first.load(SeqCst) > 0 {
                f.busy_first.fetch_sub(1, SeqCst);
                return Ok(Admission::Busy { retry_in: Duration::from_millis(5), fleet: 4 });
            }
            let wait = Duration::from_millis(u64::from(f.wait_ms.load(SeqCst)));
            if ask.max_wait.is_some_and(|m| wait > m) {
                return Ok(Admission::Refused { wait });
            }
            let fleet = match f.fleet.load(SeqCst) {
                0 => 4,
                n => n,
            };
            Ok(Admission::Go { wait, lease: None, rate: Some(8.0), fleet })
        })
    }

    fn report<'a>(&'a self, _: &'a str, report: Report) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.0.down.load(SeqCst) {
                return Err(StoreError::Timeout);
            }
            self.0.reports.lock().unwrap().push(report);
            Ok(())
        })
    }

    fn breaker<'a>(&'a self, _: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
        Box::pin(async { Err(StoreError::Unavailable("not in this fake".into())) })
    }

    fn kind(&self) -> &'static str {
        "fake"
    }
}

fn shared(name: &'static str) -> (&'static Limiter, Handle) {
    let limiter: &'static Limiter = Box::leak(Box::new(Limiter::new(name)));
    let store = Handle::default();
    assert!(limiter.share(store.clone()).is_ok());
    assert!(limiter.share(store.clone()).is_err(), "a second store is handed back");
    (limiter, store)
}

#[tokio::test(start_paused = true)]
async fn each_attempt_asks_once_and_sleeps_the_answer() {
    let (l, store) = shared("store::sleeps");
    store.0.wait_ms.store(250, SeqCst);
    let t = Instant::now();
    let out: Result<u8, ApiError> = Policy::DEFAULT.call().limiter(l).tokens(700).retry(|| async { Ok(1) }).await;
    assert_eq!(out.unwrap(), 1);
    assert_eq!(t.elapsed(), Duration::from_millis(250));
    assert_eq!(*store.0.asks.lock().unwrap(), vec![(700.0, None)]);
    let s = l.stats();
    assert_eq!((s.mode, s.rate, s.fleet, s.source), (Sharing::Shared, Some(8.0), Some(4), RateSource::Shared));
    assert_eq!(s.waits, 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_is_refused_and_the_deadline_ends_the_call() {
    let (l, store) = shared("store::deadline");
    store.0.wait_ms.store(10_000, SeqCst);
    let t = Instant::now();
    let out: Result<u8, ApiError> =
        Policy::DEFAULT.call().limiter(l).deadline(Duration::from_secs(2)).retry(|| async { Ok(1) }).await;
    assert!(out.is_err(), "the deadline ends it: {out:?}");
    assert!(t.elapsed() <= Duration::from_secs(2), "never past the deadline: {:?}", t.elapsed());
    let asks = store.0.asks.lock().unwrap().clone();
    assert_eq!(asks.len(), 1);
    assert_eq!(asks[0].1, Some(Duration::from_secs(2)), "the store is told what is left of the deadline");
}

#[tokio::test(start_paused = true)]
async fn busy_asks_again() {
    let (l, store) = shared("store::busy");
    store.0.busy_first.store(2, SeqCst);
    let t = Instant::now();
    l.acquire().await;
    assert_eq!(t.elapsed(), Duration::from_millis(10));
    assert_eq!(store.0.asks.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn throttles_headers_and_token_corrections_go_to_the_store() {
    let (l, store) = shared("store::reports");
    l.throttled(Some(Duration::from_millis(300)));
    let mut h = http::HeaderMap::new();
    h.insert("x-ratelimit-limit-requests", "600".parse().unwrap());
    h.insert("x-ratelimit-remaining-requests", "0".parse().unwrap());
    h.insert("x-ratelimit-reset-requests", "2s".parse().unwrap());
    l.observe(&h);
    l.correct_tokens(500, 800);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let reports = store.0.reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(matches!(reports[0], Report::Throttle { retry_after: Some(d), .. } if d == Duration::from_millis(300)));
    assert!(
        matches!(reports[1], Report::Limits { requests_per_second: Some(r), remaining_requests: Some(0), pause: Some(p), .. }
            if r == 10.0 && p == Duration::from_secs(2)),
        "{:?}",
        reports[1]
    );
    assert!(matches!(reports[2], Report::Tokens { delta } if delta == 300.0));
    // The local state learned nothing: the fleet's state is the store's.
    assert_eq!(l.stats().paused_for, Duration::ZERO);
    assert_eq!(l.stats().throttles, 1);
}

#[tokio::test(start_paused = true)]
async fn a_store_that_fails_falls_back_to_the_shared_rate_over_the_fleet_then_shares_again() {
    let (l, store) = shared("store::fallback");
    l.acquire().await; // the store says 8/s over a fleet of 4
    store.0.down.store(true, SeqCst);
    let t = Instant::now();
    // Alone, this worker paces at 8 / 4 = 2 per second.
    for _ in 0..5 {
        l.acquire().await;
    }
    let s = l.stats();
    assert_eq!(s.mode, Sharing::Fallback);
    assert_eq!(s.rate, Some(2.0));
    assert!(t.elapsed() >= Duration::from_millis(1_900), "paced locally at 2/s: {:?}", t.elapsed());
    // It keeps asking the store every half second, and shares again once it answers.
    store.0.down.store(false, SeqCst);
    let asked = store.0.asks.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    l.acquire().await;
    assert_eq!(l.stats().mode, Sharing::Shared);
    assert_eq!(store.0.asks.lock().unwrap().len(), asked + 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_report_moves_the_next_admission_to_local_pacing() {
    let (l, store) = shared("store::report_fails");
    l.acquire().await;
    store.0.down.store(true, SeqCst);
    let out: Result<u8, ApiError> = Policy::DEFAULT
        .call()
        .limiter(l)
        .retry({
            let mut n = 0;
            move || {
                n += 1;
                let first = n == 1;
                async move { if first { Err(ApiError::from_status(429)) } else { Ok(2) } }
            }
        })
        .await;
    assert_eq!(out.unwrap(), 2);
    assert_eq!(l.stats().mode, Sharing::Fallback);
    assert_eq!(ApiError::from_status(429).kind(), ErrorKind::RateLimited);
}

#[tokio::test(start_paused = true)]
async fn attempts_sleeping_through_a_throttle_give_their_slots_back_and_ask_again() {
    let (l, store) = shared("store::abandon");
    store.0.wait_ms.store(500, SeqCst);
    // A fleet of one: this process holds every slot, so they can go back exactly.
    store.0.fleet.store(1, SeqCst);
    let sleepers: Vec<_> = (0..3).map(|_| tokio::spawn(async move { l.acquire().await })).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.0.asks.lock().unwrap().len(), 3);
    // A throttle this process meets while they sleep: their slots, spaced at the rate before
    // the cut, go back first; then the throttle.
    l.throttled(Some(Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(1)).await;
    {
        let reports = store.0.reports.lock().unwrap();
        assert!(matches!(reports[0], Report::Abandon { slots: 3, .. }), "{reports:?}");
        assert!(matches!(reports[1], Report::Throttle { .. }), "{reports:?}");
    }
    // Each asks again when it wakes, and sleeps its new answer.
    store.0.wait_ms.store(0, SeqCst);
    for s in sleepers {
        s.await.unwrap();
    }
    assert_eq!(store.0.asks.lock().unwrap().len(), 6);
    // An attempt that asked after the throttle does not ask twice.
    l.acquire().await;
    assert_eq!(store.0.asks.lock().unwrap().len(), 7);
}

#[tokio::test(start_paused = true)]
async fn in_a_larger_fleet_sleeping_attempts_ask_again_but_give_no_slots_back() {
    let (l, store) = shared("store::no_abandon");
    store.0.wait_ms.store(500, SeqCst);
    let sleepers: Vec<_> = (0..3).map(|_| tokio::spawn(async move { l.acquire().await })).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    l.throttled(Some(Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(1)).await;
    {
        let reports = store.0.reports.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(matches!(reports[0], Report::Throttle { .. }), "{reports:?}");
    }
    store.0.wait_ms.store(0, SeqCst);
    for s in sleepers {
        s.await.unwrap();
    }
    assert_eq!(store.0.asks.lock().unwrap().len(), 6, "each asks again");
}
