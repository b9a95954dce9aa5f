//! The limiter's bulkhead (`max_in_flight`), in paused time: never more attempts in flight
//! than the cap, on every path that sends one (builder calls, manual loops, batches, streams),
//! and a place always given back, however the attempt ends (a response, a timeout, the
//! deadline, a cancelled call). With a shared store, the cap is the fleet's: the place is a
//! lease, given back to the store when the attempt ends.

use futures_util::StreamExt;
use llm_retry_runtime::limits::{LimitError, LimiterConfig};
use llm_retry_runtime::store::{Admission, Ask, BreakerAnswer, BreakerOp, Report, Store, StoreError, StoreFuture};
use llm_retry_runtime::{ApiError, Limiter, Policy, RetryExt};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

fn capped(name: &'static str, cap: u32) -> &'static Limiter {
    let config: LimiterConfig = Limiter::builder(name).max_in_flight(cap).build().expect("a valid cap");
    Box::leak(Box::new(Limiter::from_config(config)))
}

/// Bodies running now, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl Gauge {
    async fn run(&self, for_: Duration) {
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(n, SeqCst);
        tokio::time::sleep(for_).await;
        self.now.fetch_sub(1, SeqCst);
    }
}

/// `n` calls through `l` at once, each with a deadline of 30 s and a body of 100 ms.
fn spawn_calls(
    l: &'static Limiter,
    n: usize,
    gauge: &Arc<Gauge>,
) -> Vec<tokio::task::JoinHandle<Result<(), ApiError>>> {
    (0..n)
        .map(|_| {
            let g = Arc::clone(gauge);
            tokio::spawn(async move {
                Policy::DEFAULT
                    .call::<(), ApiError>()
                    .limiter(l)
                    .deadline(Duration::from_secs(30))
                    .retry(|| {
                        let g = Arc::clone(&g);
                        async move {
                            g.run(Duration::from_millis(100)).await;
                            Ok(())
                        }
                    })
                    .await
            })
        })
        .collect()
}

#[test]
fn a_cap_of_zero_is_an_error_that_names_the_fix() {
    let e = Limiter::builder("x").max_in_flight(0).build().unwrap_err();
    assert_eq!(e, LimitError::InvalidInFlight);
    assert!(e.message().contains("at least 1"), "{}", e.message());
}

#[tokio::test(start_paused = true)]
async fn calls_never_exceed_the_cap_and_queue_for_a_place() {
    let l = capped("bulkhead::calls", 3);
    let gauge = Arc::new(Gauge::default());
    let t = Instant::now();
    for task in spawn_calls(l, 10, &gauge) {
        task.await.unwrap().unwrap();
    }
    assert_eq!(gauge.most.load(SeqCst), 3);
    // Four waves of at most three.
    assert_eq!(t.elapsed(), Duration::from_millis(400));
    assert_eq!(l.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_call_gives_its_place_back() {
    let l = capped("bulkhead::cancel", 1);
    let hung =
        tokio::spawn(
            async move { Policy::DEFAULT.call::<(), ApiError>().limiter(l).retry(std::future::pending).await },
        );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(l.stats().in_flight, 1);
    hung.abort();
    let _ = hung.await;
    assert_eq!(l.stats().in_flight, 0);
    let out: Result<u8, ApiError> = Policy::DEFAULT.call().limiter(l).retry(|| async { Ok(5) }).await;
    assert_eq!(out.unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn timeouts_and_the_deadline_give_places_back() {
    let l = capped("bulkhead::timeouts", 1);
    let policy = Policy::builder().max_attempts(3).build().unwrap();
    // Each attempt hangs and its timeout cuts it: three attempts, each with its place.
    let out: Result<(), ApiError> =
        policy.call().limiter(l).attempt_timeout(Duration::from_millis(50)).retry(std::future::pending).await;
    assert!(out.is_err());
    assert_eq!(l.stats().in_flight, 0);
    // A call that waits for a place past its deadline gives up, holding nothing.
    let holder = tokio::spawn(async move {
        Policy::DEFAULT
            .call::<(), ApiError>()
            .limiter(l)
            .retry(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = Instant::now();
    let out: Result<(), ApiError> =
        Policy::DEFAULT.call().limiter(l).deadline(Duration::from_millis(200)).retry(|| async { Ok(()) }).await;
    assert!(out.is_err(), "the deadline ends a call that never got a place");
    assert_eq!(t.elapsed(), Duration::from_millis(200));
    assert_eq!(l.stats().in_flight, 1, "only the holder's place");
    holder.await.unwrap().unwrap();
    assert_eq!(l.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_manual_loop_holds_the_place_it_is_given() {
    let l = capped("bulkhead::manual", 1);
    let call = Policy::DEFAULT.call::<(), ApiError>().limiter(l);
    let slot = call.wait_for_limiter().await;
    assert_eq!(l.stats().in_flight, 1);
    let second = Policy::DEFAULT.call::<(), ApiError>().limiter(l);
    let waiting = tokio::time::timeout(Duration::from_secs(1), second.wait_for_limiter()).await;
    assert!(waiting.is_err(), "the cap holds the second loop");
    drop(slot);
    assert_eq!(l.stats().in_flight, 0);
    let _again = second.wait_for_limiter().await;
    assert_eq!(l.stats().in_flight, 1);
}

#[tokio::test(start_paused = true)]
async fn a_batch_keeps_to_the_cap_whatever_its_concurrency() {
    let l = capped("bulkhead::batch", 2);
    let gauge = Arc::new(Gauge::default());
    let batch = Policy::DEFAULT.batch().concurrency(10).limiter(l).build().unwrap();
    let g = Arc::clone(&gauge);
    let results = batch
        .run(0..10, move |_| {
            let g = Arc::clone(&g);
            async move {
                g.run(Duration::from_millis(100)).await;
                Ok::<_, ApiError>(())
            }
        })
        .await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(gauge.most.load(SeqCst), 2);
    assert_eq!(l.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_holds_its_place_until_it_ends() {
    let l = capped("bulkhead::stream", 1);
    let open = || async {
        let chunks = futures_util::stream::iter(["a", "b"]).then(|c| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, ApiError>(c.to_string())
        });
        Ok::<_, ApiError>(chunks.boxed())
    };
    let mut first = Box::pin(Policy::DEFAULT.call::<(), ApiError>().limiter(l).stream(move |_| open()));
    assert!(first.next().await.is_some());
    assert_eq!(l.stats().in_flight, 1, "held while the stream reads");
    let second = Policy::DEFAULT.call::<(), ApiError>().limiter(l).stream(move |_| open());
    let t = Instant::now();
    let ((), b) = tokio::join!(async { while first.next().await.is_some() {} }, second.collect::<Vec<_>>());
    assert_eq!(b.len(), 2);
    // The second opened only once the first ended (at 200 ms), then read for 200 ms.
    assert_eq!(t.elapsed(), Duration::from_millis(300));
    assert_eq!(l.stats().in_flight, 0);
}

/// A store that grants leases while fewer than `cap` are out, and records releases.
#[derive(Default)]
struct Leases {
    next: AtomicU64,
    out: Mutex<Vec<u64>>,
    released: Mutex<Vec<u64>>,
    asked: Mutex<Vec<(Option<Duration>, Option<u32>)>>,
}

#[derive(Clone, Default)]
struct LeaseStore(Arc<Leases>);

impl Store for LeaseStore {
    fn admit<'a>(&'a self, ask: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
        Box::pin(async move {
            let s = &self.0;
            s.asked.lock().unwrap().push((ask.lease, ask.tuning.max_in_flight));
            let cap = ask.tuning.max_in_flight.unwrap_or(u32::MAX) as usize;
            let mut out = s.out.lock().unwrap();
            if out.len() >= cap {
                return Ok(Admission::Busy { retry_in: Duration::from_millis(10), fleet: 1 });
            }
            let id = s.next.fetch_add(1, SeqCst) + 1;
            out.push(id);
            Ok(Admission::Go { wait: Duration::ZERO, lease: Some(id), rate: None, fleet: 1 })
        })
    }

    fn report<'a>(&'a self, _: &'a str, report: Report) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if let Report::Release { lease } = report {
                self.0.out.lock().unwrap().retain(|l| *l != lease);
                self.0.released.lock().unwrap().push(lease);
            }
            Ok(())
        })
    }

    fn breaker<'a>(&'a self, _: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
        Box::pin(async { Err(StoreError::Unavailable("no breakers here".into())) })
    }

    fn kind(&self) -> &'static str {
        "leases"
    }
}

#[tokio::test(start_paused = true)]
async fn shared_the_cap_is_the_stores_and_each_lease_goes_back() {
    let l = capped("bulkhead::shared", 2);
    let store = LeaseStore::default();
    assert!(l.share(store.clone()).is_ok());
    let gauge = Arc::new(Gauge::default());
    for task in spawn_calls(l, 6, &gauge) {
        task.await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(gauge.most.load(SeqCst), 2, "the store's cap holds");
    assert_eq!(store.0.released.lock().unwrap().len(), 6, "every lease went back");
    assert!(store.0.out.lock().unwrap().is_empty());
    let asked = store.0.asked.lock().unwrap().clone();
    assert!(asked.iter().all(|(lease, cap)| *cap == Some(2) && lease.is_some_and(|d| d <= Duration::from_secs(35))));
    assert_eq!(l.stats().in_flight, 0);
}
