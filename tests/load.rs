//! Load: 100,000 concurrent annotated calls in paused time, with bounded memory; and stats and
//! limiter state that stay consistent when two worker threads run many calls at once.
//!
//! ```sh
//! cargo test --test load --all-features
//! # the memory figures in docs/RELIABILITY.md (each in its own process, so RSS is its own):
//! cargo test --release --test load --all-features -- --ignored --nocapture --exact measure_memory_spawned
//! cargo test --release --test load --all-features -- --ignored --nocapture --exact measure_memory_joined
//! ```
//!
//! A test binary of its own, not a module of `tests/it`: resident memory belongs to the whole
//! process, so the memory bound (and the figures) count only these calls when no other test
//! runs beside them.

use llm_retry::{ApiError, ErrorKind, GiveUp, Limiter, Policy, llm_retry, stats::Site};
use reqwest::header::HeaderMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

const CALLS: usize = 100_000;

/// Attempts made so far, per call id (the body runs afresh for each attempt).
static ATTEMPTS: LazyLock<Vec<AtomicU8>> = LazyLock::new(|| (0..3 * CALLS).map(|_| AtomicU8::new(0)).collect());

/// The body of a simulated LLM request: 100 ms of (paused) latency; every third call's first
/// attempt fails with a 503, every tenth or so with a 429 and a 50 ms hint.
async fn request(id: usize) -> Result<usize, ApiError> {
    let attempt = ATTEMPTS[id].fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(Duration::from_millis(100)).await;
    match (attempt, id % 21) {
        (1, 0 | 3 | 6 | 9 | 12 | 15 | 18) => Err(ApiError::from_status(503)),
        (1, 7 | 14) => {
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", "50".parse().unwrap());
            Err(ApiError::from_response(429, &h, b""))
        }
        _ => Ok(id),
    }
}

#[llm_retry(name = "load::chat", max = 4, backoff = "exponential", base = "200ms", max_delay = "2s", deadline = "30s")]
async fn chat(id: usize) -> Result<usize, ApiError> {
    request(id).await
}

/// The current and peak resident set size of this process, in bytes (Linux).
fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[tokio::test(start_paused = true)]
async fn a_hundred_thousand_concurrent_calls_complete_with_bounded_memory() {
    let before = rss();
    let started = tokio::time::Instant::now();
    let handles: Vec<_> = (0..CALLS).map(|id| tokio::spawn(chat(id))).collect();
    // Let every call reach its first await: all 100,000 are in flight at once.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), CALLS);
    let in_flight = rss();
    for (id, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap().unwrap(), id);
    }
    // Each call took 100 ms, plus one retry for a third of them: the herd ran side by side.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 0);

    let s = llm_retry::stats().get("load::chat").unwrap();
    let retried = (0..CALLS).filter(|id| matches!(id % 21, 0 | 3 | 6 | 9 | 12 | 14 | 15 | 18 | 7)).count() as u64;
    assert_eq!((s.calls, s.successes, s.finished()), (CALLS as u64, CALLS as u64, CALLS as u64));
    assert_eq!(s.retries, retried);
    assert_eq!(s.attempts, CALLS as u64 + retried);
    assert_eq!(s.first_try_successes, CALLS as u64 - retried);

    // Bounded memory: the growth while all calls were in flight stays under 8 KiB a call
    // (tokio task, timer entry, the call's state machine; measured ~1-2 KiB in docs/RELIABILITY.md).
    if let (Some((rss0, _)), Some((rss1, _))) = (before, in_flight) {
        let per_call = rss1.saturating_sub(rss0) / CALLS as u64;
        assert!(per_call < 8 * 1024, "{per_call} bytes of RSS per in-flight call");
    }
}

/// Warms up (registers the site, seeds the RNG, grows the timer wheel once) and returns the RSS.
async fn warm_up() -> u64 {
    let _ = futures::future::join_all((2 * CALLS..2 * CALLS + 1000).map(chat)).await;
    rss().unwrap().0
}

fn report(how: &str, base: u64, peak: u64) {
    let grown = peak.saturating_sub(base);
    println!("{how}: {CALLS} calls in flight, peak RSS +{} MiB, {} bytes per call", grown >> 20, grown / CALLS as u64);
}

/// A figure for docs/RELIABILITY.md: peak RSS growth per in-flight call, each call a spawned task.
/// Run it alone (its own process), so that no other test's memory is counted.
#[tokio::test(start_paused = true)]
#[ignore = "a measurement: run by hand, alone (see the module docs)"]
async fn measure_memory_spawned() {
    let future = std::mem::size_of_val(&chat(0));
    let body = std::mem::size_of_val(&request(0));
    println!("future of an annotated call: {future} bytes (of which the body's own future: {body} bytes)");
    let base = warm_up().await;
    let handles: Vec<_> = (0..CALLS).map(|id| tokio::spawn(chat(id))).collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    let peak = rss().unwrap().1;
    for h in handles {
        h.await.unwrap().unwrap();
    }
    report("spawned tasks", base, peak);
}

/// The same, with all calls as futures in one task (`join_all`): the library's share alone.
#[tokio::test(start_paused = true)]
#[ignore = "a measurement: run by hand, alone (see the module docs)"]
async fn measure_memory_joined() {
    let base = warm_up().await;
    let out = futures::future::join_all((CALLS..2 * CALLS).map(chat)).await;
    assert_eq!(out.len(), CALLS);
    report("join_all in one task", base, rss().unwrap().1);
}

/// Many tasks on two worker threads, against one site and one limiter: every counter adds up.
static MT_SITE: Site = Site::new("load::two_threads", POLICY);
const POLICY: Policy = match Policy::builder()
    .max_attempts(3)
    .backoff(llm_retry::Backoff::Fixed { delay: Duration::from_millis(1) })
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};
/// A limiter that gates but never below 20,000 requests a second, so the test stays short.
static LIMITER: Limiter = Limiter::from_config(match Limiter::builder("load::endpoint").min_rate(20_000.0).build() {
    Ok(c) => c,
    Err(_) => panic!(),
});

/// What each attempt did, counted by the bodies themselves.
static RUN: AtomicU64 = AtomicU64::new(0);
static THROTTLED: AtomicU64 = AtomicU64::new(0);

/// Call `id`: 1 in 5 is rate-limited on its first attempt, 1 in 7 fails with a 503 on every
/// attempt, 1 in 11 is refused (401), the rest succeed at once.
async fn mt_call(id: u64) -> Result<u64, ApiError> {
    let mut call = llm_retry::call::Call::new(&MT_SITE).limiter(&LIMITER);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let n = attempt;
        let body = async move {
            RUN.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            if id % 11 == 0 {
                Err(ApiError::from_status(401))
            } else if id % 7 == 0 {
                Err(ApiError::from_status(503))
            } else if id % 5 == 0 && n == 1 {
                THROTTLED.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::from_status(429))
            } else {
                Ok(id)
            }
        };
        if let core::ops::ControlFlow::Break(r) = call.attempt(body).await {
            return r;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_limiter_stay_consistent_on_two_worker_threads() {
    const N: u64 = 20_000;
    // Throttle the endpoint once, let the limiter measure a rate, and throttle again: it gates.
    LIMITER.record(true);
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        LIMITER.record(false);
    }
    LIMITER.record(true);
    assert!(LIMITER.stats().rate.is_some(), "the limiter should gate: {:?}", LIMITER.stats());
    let throttles_before = LIMITER.stats().throttles;
    let handles: Vec<_> = (0..N).map(|id| tokio::spawn(mt_call(id))).collect();
    let mut ok = 0;
    let mut refused = 0;
    let mut exhausted = 0;
    for (id, h) in handles.into_iter().enumerate() {
        match h.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, id as u64);
                ok += 1;
            }
            Err(e) if e.kind() == ErrorKind::Auth => refused += 1,
            Err(e) => {
                assert_eq!(e.status(), Some(503));
                exhausted += 1;
            }
        }
    }
    let want_refused = (0..N).filter(|i| i % 11 == 0).count() as u64;
    let want_exhausted = (0..N).filter(|i| i % 11 != 0 && i % 7 == 0).count() as u64;
    let want_throttled = (0..N).filter(|i| i % 11 != 0 && i % 7 != 0 && i % 5 == 0).count() as u64;
    assert_eq!((refused, exhausted, ok), (want_refused, want_exhausted, N - want_refused - want_exhausted));

    let s = MT_SITE.stats();
    let runs = RUN.load(Ordering::Relaxed);
    assert_eq!((s.calls, s.finished(), s.cancelled, s.panicked), (N, N, 0, 0), "{s:?}");
    assert_eq!(s.successes, ok);
    assert_eq!(s.gave_up(GiveUp::NonRetryable), refused);
    assert_eq!(s.gave_up(GiveUp::Exhausted), exhausted);
    assert_eq!(s.attempts, runs, "attempts counted vs bodies run");
    assert_eq!(s.retries, runs - N);
    assert_eq!(s.retries_of(ErrorKind::RateLimited), want_throttled);
    assert_eq!(s.retries_of(ErrorKind::Server), 2 * want_exhausted);
    assert_eq!(s.first_try_successes, ok - want_throttled);

    let l = LIMITER.stats();
    assert_eq!(THROTTLED.load(Ordering::Relaxed), want_throttled);
    assert_eq!(l.throttles - throttles_before, want_throttled, "throttles reported vs 429s served: {l:?}");
    assert!(l.waits > 0 && l.waits <= runs, "{l:?}");
    assert!(l.rate.is_some_and(|r| (20_000.0..=1_000_000.0).contains(&r)), "{l:?}");
    println!("two worker threads: {N} calls, {runs} attempts, limiter {l:?}");
}
