//! Batch retry in paused time: scale, order, per-item scheduling, the batch's limiter,
//! progress, bad input, panics and cancellation. Every clock here is tokio's paused clock, so
//! the timings asserted are exact.

use futures_util::StreamExt;
use llm_retry_runtime::{
    ApiError, Backoff, ErrorKind, Jitter, Policy, RetryExt, batch::BatchError, batch::ItemResult, batch::Progress,
    http::RetryAfter, rng::seed_thread_rng,
};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, sleep};

const MS: Duration = Duration::from_millis(1);

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// A 429 with `Retry-After`, as `ApiError::from_response` builds it from a real response.
fn rate_limited(after: Duration) -> ApiError {
    ApiError::from_status(429).with_retry_after(RetryAfter::Delay(after))
}

fn fixed(delay: Duration) -> Policy {
    Policy::builder().max_attempts(10).backoff(Backoff::Fixed { delay }).jitter(Jitter::None).build().unwrap()
}

/// Records the start of every attempt: (item, time since `t0`).
#[derive(Clone)]
struct Starts {
    t0: Instant,
    log: Arc<Mutex<Vec<(usize, Duration)>>>,
}

impl Starts {
    fn new() -> Self {
        Starts { t0: Instant::now(), log: Arc::default() }
    }
    fn record(&self, item: usize) -> usize {
        let mut log = self.log.lock().unwrap();
        log.push((item, self.t0.elapsed()));
        log.iter().filter(|(i, _)| *i == item).count()
    }
    fn times(&self) -> Vec<(usize, Duration)> {
        self.log.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn hundred_thousand_items_at_k_64_complete_in_order() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let batch = Policy::DEFAULT.batch().concurrency(64).build().unwrap();
    let t0 = Instant::now();
    let results = batch
        .run(0..100_000usize, |i| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Relaxed) + 1;
                peak.fetch_max(now, Relaxed);
                sleep(MS * (1 + (i % 7) as u32)).await;
                in_flight.fetch_sub(1, Relaxed);
                Ok::<_, ApiError>(i * 2)
            }
        })
        .await;
    assert_eq!(results.len(), 100_000);
    for (i, r) in results.iter().enumerate() {
        assert_eq!((r.index, r.attempts, r.outcome.as_ref().ok()), (i, 1, Some(&(i * 2))));
    }
    assert_eq!(peak.load(Relaxed), 64);
    // 100,000 items of 4 ms on average, 64 at a time: about 6.25 s of paused time.
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(6_200) && took <= Duration::from_millis(6_400), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn results_keep_input_order_whatever_the_finishing_order() {
    let batch = Policy::DEFAULT.batch().concurrency(10).build().unwrap();
    let results = batch
        .run((0..500u32).rev(), |n| async move {
            // Inputs finish in a scrambled order.
            sleep(MS * (n % 13)).await;
            Ok::<_, ApiError>(n)
        })
        .await;
    let got: Vec<(usize, u32)> = results.iter().map(|r| (r.index, *r.outcome.as_ref().unwrap())).collect();
    let want: Vec<(usize, u32)> = (0..500).map(|i| (i as usize, 499 - i)).collect();
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn empty_batch_is_an_empty_result() {
    let batch = Policy::DEFAULT.batch().build().unwrap();
    let op = |n: u8| async move { Ok::<_, ApiError>(n) };
    assert!(batch.run(std::iter::empty(), op).await.is_empty());
    let mut stream = batch.stream(Vec::new(), op);
    assert!(stream.next().await.is_none());
    let mut want = Progress::default();
    want.total = Some(0);
    assert_eq!(stream.progress(), want);
}

#[test]
fn zero_concurrency_is_an_error_not_a_hang() {
    let err = Policy::DEFAULT.batch().concurrency(0).build().unwrap_err();
    assert_eq!(err, BatchError::ZeroConcurrency);
    assert_eq!(
        err.to_string(),
        "concurrency counts items in flight and must be at least 1; use 1 to run the batch one item at a time"
    );
    assert!(Policy::DEFAULT.batch().concurrency(1).build().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_slow_item_does_not_delay_the_retries_of_others() {
    let starts = Starts::new();
    let batch = fixed(500 * MS).batch().concurrency(4).build().unwrap();
    let mut stream = batch.stream(0..4usize, |i| {
        let starts = starts.clone();
        async move {
            let attempt = starts.record(i);
            match (i, attempt) {
                (0, _) => {
                    sleep(Duration::from_secs(30)).await;
                    Ok(i)
                }
                (_, 1) => {
                    sleep(100 * MS).await;
                    Err(ApiError::from_status(503))
                }
                _ => Ok(i),
            }
        }
    });
    let mut finished = Vec::new();
    while let Some(r) = stream.next().await {
        finished.push((r.index, ms(r.elapsed), r.attempts));
    }
    // Items 1..=3 fail at 100 ms and retry at 600 ms, each on its own back-off; item 0 is
    // still running, and nobody waits for it.
    assert_eq!(finished, [(1, 600, 2), (2, 600, 2), (3, 600, 2), (0, 30_000, 1)]);
}

#[tokio::test(start_paused = true)]
async fn a_retried_item_keeps_its_slot_so_at_most_k_attempts_are_in_flight() {
    let max_seen = Arc::new(Mutex::new(Progress::default()));
    let seen = max_seen.clone();
    let batch = fixed(50 * MS)
        .batch()
        .concurrency(8)
        .on_progress(move |p| {
            let mut m = seen.lock().unwrap();
            m.in_flight = m.in_flight.max(p.in_flight);
            m.waiting = m.waiting.max(p.waiting);
            assert!(p.in_flight + p.waiting <= 8, "{p:?}");
        })
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let results = batch
        .run(0..200usize, |i| {
            let n = calls.fetch_add(1, Relaxed);
            async move {
                sleep(10 * MS).await;
                if n % 3 == 0 { Err(ApiError::from_status(502)) } else { Ok(i) }
            }
        })
        .await;
    assert!(results.iter().all(ItemResult::is_ok));
    let m = *max_seen.lock().unwrap();
    assert_eq!(m.in_flight, 8);
    assert!(m.waiting > 0);
}

/// K = 64, 1,000 items of 100 ms; item 5's first attempt gets a 429 with Retry-After 2 s.
async fn one_429_with_retry_after_2s(gate: bool) -> (Vec<ItemResult<usize, ApiError>>, Vec<(usize, Duration)>) {
    seed_thread_rng(6);
    let starts = Starts::new();
    let batch = Policy::DEFAULT.batch().concurrency(64).shared_gate(gate).build().unwrap();
    let results = batch
        .run(0..1_000usize, |i| {
            let starts = starts.clone();
            async move {
                let attempt = starts.record(i);
                sleep(100 * MS).await;
                if (i, attempt) == (5, 1) { Err(rate_limited(Duration::from_secs(2))) } else { Ok(i) }
            }
        })
        .await;
    (results, starts.times())
}

#[tokio::test(start_paused = true)]
async fn one_429_with_retry_after_holds_every_new_attempt_for_its_duration() {
    let (results, starts) = one_429_with_retry_after_2s(true).await;
    assert!(results.iter().all(ItemResult::is_ok));
    assert_eq!(results.iter().map(|r| r.rate_limited).sum::<u32>(), 1);
    assert_eq!((results[5].attempts, results[5].rate_limited), (2, 1));
    // The 429 arrives at 100 ms. Nothing starts after it until 2 s plus the engine's small
    // jitter (at most a tenth of the hint) have passed.
    let after: Vec<Duration> = starts.iter().map(|(_, t)| *t).filter(|t| *t > 100 * MS).collect();
    let reopened = after[0];
    assert!(reopened >= 2_100 * MS && reopened <= 2_300 * MS, "{reopened:?}");
    // The hold is exact for a given seed: the same run again opens at the same instant.
    let (_, again) = one_429_with_retry_after_2s(true).await;
    assert_eq!(again, starts);
    // Then the limiter paces the waiting attempts instead of releasing them as one herd, and
    // the pace fades with successes: after a lone throttle its rate (about 30/s from what the
    // batch had sent) doubles every half second, so the ~970 items left end within 4 s of
    // the reopening, where the first pace alone would take about 30 s.
    assert!(after[1] > reopened, "{:?}", &after[..3]);
    let end = *after.last().unwrap() + 100 * MS;
    assert!(end < reopened + Duration::from_secs(4), "{end:?}");

    // Without the shared gate, the other items carry on during those 2 s.
    let (_, free) = one_429_with_retry_after_2s(false).await;
    assert!(free.iter().all(|(i, t)| *i == 5 || *t < 2_100 * MS));
}

/// A throttle without a Retry-After does not pause the batch (the back-off is the client's
/// guess, not the server's word): it only paces it, so the items behind it start spread out
/// rather than as a herd, while the throttled item retries after its own back-off.
#[tokio::test(start_paused = true)]
async fn without_a_hint_the_limiter_paces_without_a_pause() {
    let starts = Starts::new();
    let batch = fixed(Duration::from_secs(1)).batch().concurrency(16).build().unwrap();
    let results = batch
        .run(0..100usize, |i| {
            let starts = starts.clone();
            async move {
                let attempt = starts.record(i);
                sleep(10 * MS).await;
                if (i, attempt) == (3, 1) { Err(ApiError::from_status(529)) } else { Ok(i) }
            }
        })
        .await;
    assert!(results.iter().all(ItemResult::is_ok));
    assert_eq!(results[3].outcome.as_ref().ok(), Some(&3));
    assert_eq!(results[3].rate_limited, 1, "an overload counts as a rate limit");
    let times = starts.times();
    let after: Vec<Duration> = times.iter().filter(|(i, t)| *i != 3 && *t > 10 * MS).map(|(_, t)| *t).collect();
    assert!(after[0] < Duration::from_secs(1), "no hold for the back-off: {:?}", &after[..3]);
    assert!(after.windows(2).all(|w| w[1] > w[0]), "paced, one at a time: {after:?}");
    let retry = times.iter().find(|(i, t)| *i == 3 && *t > 10 * MS).unwrap().1;
    // Its own back-off, then its turn in the limiter's queue.
    assert!(retry >= Duration::from_millis(1_010) && retry < Duration::from_secs(2), "{retry:?}");
}

/// A server-side token bucket in the op (GCRA, as the chaos server's): `interval` between
/// requests, `burst` at once. Refusals are 429s whose Retry-After says when the next token is.
struct Bucket {
    interval: Duration,
    tolerance: Duration,
    tat: Mutex<Instant>,
}

impl Bucket {
    fn new(interval: Duration, burst: u32) -> Self {
        Bucket { interval, tolerance: interval * (burst - 1), tat: Mutex::new(Instant::now()) }
    }
    fn take(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut tat = self.tat.lock().unwrap();
        let ahead = (*tat).max(now) - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        *tat = (*tat).max(now) + self.interval;
        Ok(())
    }
}

async fn against_a_token_bucket(gate: bool) -> (Vec<ItemResult<usize, ApiError>>, Duration) {
    seed_thread_rng(11);
    let policy = Policy::builder().max_attempts(1_000).build().unwrap();
    let batch = policy.batch().concurrency(32).shared_gate(gate).build().unwrap();
    // 6,000 requests a minute, 5 at once; each request takes 2 ms.
    let bucket = Bucket::new(10 * MS, 5);
    let t0 = Instant::now();
    let results = batch
        .run(0..1_000usize, |i| {
            let admitted = bucket.take();
            async move {
                sleep(2 * MS).await;
                admitted.map(|()| i).map_err(|wait| rate_limited(wait.max(MS)))
            }
        })
        .await;
    (results, t0.elapsed())
}

#[tokio::test(start_paused = true)]
async fn the_shared_gate_keeps_429s_from_a_rate_limited_server_small() {
    let (gated, gated_time) = against_a_token_bucket(true).await;
    let (free, free_time) = against_a_token_bucket(false).await;
    for results in [&gated, &free] {
        assert!(results.iter().enumerate().all(|(i, r)| r.index == i && r.outcome.as_ref().ok() == Some(&i)));
    }
    let count = |r: &[ItemResult<usize, ApiError>]| r.iter().map(|r| r.rate_limited as usize).sum::<usize>();
    let (g, f) = (count(&gated), count(&free));
    println!("429s with the gate: {g} in {gated_time:?}; without: {f} in {free_time:?}");
    // 1,000 requests at 100/s take at least 10 s either way; the gate costs little time.
    assert!(gated_time < free_time.mul_f64(1.2), "{gated_time:?} vs {free_time:?}");
    assert!(g * 10 < f, "429s: {g} with the gate, {f} without");
    assert!(g < 250, "{g}");
    let worst = gated.iter().map(|r| r.rate_limited).max().unwrap();
    assert!(worst <= 5, "one item met {worst} 429s");
}

#[tokio::test(start_paused = true)]
async fn non_retryable_and_exhausted_items_fail_alone() {
    let policy = Policy::builder().max_attempts(3).backoff(Backoff::Fixed { delay: 100 * MS }).build().unwrap();
    let batch = policy.batch().concurrency(4).build().unwrap();
    let calls: Vec<AtomicUsize> = (0..6).map(|_| AtomicUsize::new(0)).collect();
    let results = batch
        .run(0..6usize, |i| {
            calls[i].fetch_add(1, Relaxed);
            async move {
                match i {
                    1 => Err(ApiError::from_status(401)),
                    2 => Err(ApiError::from_status(400)),
                    4 => Err(ApiError::from_status(500)),
                    _ => Ok(i),
                }
            }
        })
        .await;
    let summary: Vec<(usize, Option<ErrorKind>)> =
        results.iter().map(|r| (r.attempts as usize, r.outcome.as_ref().err().map(ApiError::kind))).collect();
    assert_eq!(
        summary,
        [
            (1, None),
            (1, Some(ErrorKind::Auth)),
            (1, Some(ErrorKind::BadRequest)),
            (1, None),
            (3, Some(ErrorKind::Server)),
            (1, None)
        ]
    );
    assert_eq!(calls.iter().map(|c| c.load(Relaxed)).collect::<Vec<_>>(), [1, 1, 1, 1, 3, 1]);
}

#[tokio::test(start_paused = true)]
async fn progress_reports_done_failed_in_flight_retries_and_the_gate() {
    let log = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = log.clone();
    let batch =
        Policy::DEFAULT.batch().concurrency(4).on_progress(move |p| sink.lock().unwrap().push(*p)).build().unwrap();
    let results = batch
        .run(0..20usize, |i| async move {
            sleep(10 * MS).await;
            match i {
                7 => Err(ApiError::from_status(403)),
                9 => Err(rate_limited(Duration::from_secs(1))),
                _ => Ok(i),
            }
        })
        .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 18);
    let log = log.lock().unwrap();
    let last = *log.last().unwrap();
    assert_eq!((last.total, last.succeeded, last.failed, last.in_flight, last.waiting), (Some(20), 18, 2, 0, 0));
    // Item 9 is rate limited on each of its 4 attempts: 3 retries, 4 rate limits.
    assert_eq!((last.retries, last.rate_limited), (3, 4));
    assert!(log.iter().any(|p| p.gate_wait >= Duration::from_millis(900)));
    assert!(log.iter().all(|p| p.in_flight <= 4));
    assert!(log.windows(2).all(|w| w[0].finished() <= w[1].finished()));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_item_propagates_instead_of_hanging() {
    for panic_in_future in [true, false] {
        let batch = Policy::DEFAULT.batch().concurrency(8).build().unwrap();
        let run = async move {
            batch
                .run(0..100usize, |i| {
                    assert!(panic_in_future || i != 42, "item {i} panicked");
                    async move {
                        sleep(MS).await;
                        assert!(!panic_in_future || i != 42, "item {i} panicked");
                        Ok::<_, ApiError>(i)
                    }
                })
                .await
        };
        // Bounded, so that a hang fails the test instead of stalling it.
        let joined = tokio::spawn(tokio::time::timeout(Duration::from_secs(3600), run)).await;
        let panic = joined.unwrap_err().into_panic();
        assert_eq!(panic.downcast_ref::<String>().map(String::as_str), Some("item 42 panicked"));
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_batch_cancels_in_flight_work_and_starts_nothing_more() {
    let started = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let batch = fixed(200 * MS).batch().concurrency(8).build().unwrap();
    let run = batch.run(0..1_000usize, |i| {
        started.fetch_add(1, Relaxed);
        let guard = OnDrop(dropped.clone());
        async move {
            let _guard = guard;
            sleep(Duration::from_secs(1)).await;
            if i % 2 == 0 { Err(ApiError::from_status(503)) } else { Ok(i) }
        }
    });
    assert!(tokio::time::timeout(Duration::from_millis(2_500), run).await.is_err());
    let at_drop = started.load(Relaxed);
    assert!(at_drop > 8 && at_drop < 40, "{at_drop}");
    // Every attempt future was dropped with the batch: none is left running.
    assert_eq!(dropped.load(Relaxed), at_drop);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(started.load(Relaxed), at_drop);
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), tasks_before);
}

#[tokio::test(start_paused = true)]
async fn the_stream_yields_results_as_they_finish() {
    let batch = Policy::DEFAULT.batch().concurrency(3).build().unwrap();
    let mut stream = batch.stream([50u64, 10, 30, 5, 1], |ms| async move {
        sleep(MS * ms as u32).await;
        Ok::<_, ApiError>(ms)
    });
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while let Some(r) = stream.next().await {
        seen.push((r.index, t0.elapsed().as_millis()));
        let p = stream.progress();
        assert_eq!(p.finished(), seen.len());
    }
    // 0, 1, 2 start at 0; 3 takes 1's slot at 10, 4 takes 3's at 15.
    assert_eq!(seen, [(1, 10), (3, 15), (4, 16), (2, 30), (0, 50)]);
}
