//! The endpoint's pacer (issue #15), in paused time: a Retry-After holds every caller and they
//! resume paced; the provider's headers set the rate, and bad headers never stall a caller;
//! a configured rate paces from the first attempt; the token bucket; the slow start; a batch
//! and builder calls on one limiter pace together.

use llm_retry_runtime::limits::RateSource;
use llm_retry_runtime::{ApiError, ErrorKind, Limiter, Policy, RetryExt, http::RetryAfter};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

fn leak(l: Limiter) -> &'static Limiter {
    Box::leak(Box::new(l))
}

fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = v.parse() {
            h.insert(*k, v);
        }
    }
    h
}

/// Starts of `n` tasks that each acquire once, relative to now.
async fn starts(limiter: &'static Limiter, n: usize) -> Vec<Duration> {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(async move {
                limiter.acquire().await;
                t0.elapsed()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

#[tokio::test(start_paused = true)]
async fn one_retry_after_holds_every_caller_then_they_resume_paced() {
    let l = leak(Limiter::builder("pacer::hold").requests_per_minute(600.0).build().map(Limiter::from_config).unwrap());
    l.throttled(Some(Duration::from_secs(2)));
    assert_eq!(l.stats().paused_for, Duration::from_secs(2));
    let s = starts(l, 10).await;
    assert!(s[0] >= Duration::from_secs(2), "nobody goes during the pause: {s:?}");
    // Paced from the end of the pause, not all at once: the throttle cut the configured
    // 10/s by β = 0.8, so one every 125 ms.
    for w in s.windows(2) {
        assert_eq!(w[1] - w[0], 125 * MS, "{s:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_and_builder_calls_on_one_limiter_pace_together() {
    static L: Limiter = Limiter::new("pacer::shared");
    // A builder call meets a 429 with Retry-After 1 s; a batch on the same limiter is held too.
    let policy = Policy::DEFAULT;
    let single = async {
        let mut n = 0;
        policy
            .call::<(), ApiError>()
            .limiter(&L)
            .retry(|| {
                n += 1;
                let first = n == 1;
                async move {
                    if first {
                        Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(1))))
                    } else {
                        Ok(())
                    }
                }
            })
            .await
    };
    let starts = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    let batch = policy.batch().concurrency(8).limiter(&L).build().unwrap();
    let seen = starts.clone();
    let items = async {
        // The batch starts just after the 429 came back.
        tokio::time::sleep(10 * MS).await;
        batch
            .run(0..8, |_| {
                seen.lock().unwrap().push(t0.elapsed());
                async { Ok::<_, ApiError>(()) }
            })
            .await
    };
    let (one, results) = tokio::join!(single, items);
    one.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
    let starts = starts.lock().unwrap();
    assert!(
        starts.iter().all(|t| *t >= Duration::from_secs(1)),
        "the batch waited out the builder call's 429: {starts:?}"
    );
    assert_eq!(L.stats().throttles, 1);
    assert_eq!(L.stats().source, RateSource::Learned);
}

#[tokio::test(start_paused = true)]
async fn headers_set_the_rate_and_a_reset_with_nothing_left_pauses() {
    let l = leak(Limiter::new("pacer::headers"));
    l.observe(&headers(&[
        ("x-ratelimit-limit-requests", "1200"),
        ("x-ratelimit-remaining-requests", "3"),
        ("x-ratelimit-reset-requests", "150ms"),
    ]));
    assert_eq!(l.rate(), Some(20.0));
    assert_eq!(l.stats().source, RateSource::Headers);
    // Three left: three go at once, then 20 a second.
    let s = starts(l, 5).await;
    assert_eq!(&s[..3], [Duration::ZERO; 3]);
    assert_eq!(s[3], 50 * MS);
    // None left and a reset: every caller waits for the reset.
    l.observe(&headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "1s")]));
    let s = starts(l, 1).await;
    assert!(s[0] >= 50 * MS && s[0] <= Duration::from_secs(1), "{s:?}");
    // Anthropic's headers, to the same effect.
    let a = leak(Limiter::new("pacer::anthropic"));
    a.observe(&headers(&[
        ("anthropic-ratelimit-requests-limit", "60"),
        ("anthropic-ratelimit-requests-remaining", "10"),
    ]));
    assert_eq!(a.rate(), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn nothing_left_without_a_reset_or_limit_never_stalls() {
    let l = leak(Limiter::new("pacer::no_reset"));
    l.observe(&headers(&[("x-ratelimit-remaining-requests", "0")]));
    let t0 = Instant::now();
    for _ in 0..5 {
        l.acquire().await;
    }
    assert!(t0.elapsed() <= Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(l.rate(), None, "no rate: it goes on learning from throttles");
}

#[tokio::test(start_paused = true)]
async fn a_reset_is_clamped_by_max_pause_and_a_deadline_bounds_the_wait() {
    let l = leak(
        Limiter::builder("pacer::clamp").max_pause(Duration::from_secs(5)).build().map(Limiter::from_config).unwrap(),
    );
    // 23 h left, nothing remaining: the pause is clamped to 5 s.
    l.observe(&headers(&[("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "23h")]));
    assert_eq!(l.stats().paused_for, Duration::from_secs(5));
    // A call with a 1 s deadline gives up at its deadline, not after the pause.
    let t0 = Instant::now();
    let out: Result<(), ApiError> =
        Policy::DEFAULT.call().limiter(l).deadline(Duration::from_secs(1)).retry(|| async { Ok(()) }).await;
    assert_eq!(out.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    // A Retry-After is clamped by the policy's max_retry_after too.
    let p = Policy::builder().max_retry_after(Duration::from_secs(3)).max_attempts(1).build().unwrap();
    let m = leak(Limiter::new("pacer::max_retry_after"));
    let _: Result<(), ApiError> = p
        .call()
        .limiter(m)
        .retry(|| async { Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(4)))) })
        .await;
    assert_eq!(m.stats().paused_for, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_configured_rate_paces_from_the_first_attempt() {
    let l = leak(Limiter::builder("pacer::rpm").requests_per_minute(120.0).build().map(Limiter::from_config).unwrap());
    assert_eq!(l.stats().source, RateSource::Configured);
    let s = starts(l, 4).await;
    // A second's worth (2) at once, then one every 500 ms.
    assert_eq!(s, [Duration::ZERO, Duration::ZERO, 500 * MS, 1_000 * MS]);
    // A provider's lower limit wins; a higher one does not lift the configured ceiling.
    l.observe(&headers(&[("x-ratelimit-limit-requests", "60")]));
    assert_eq!(l.rate(), Some(1.0));
    l.observe(&headers(&[("x-ratelimit-limit-requests", "6000")]));
    assert_eq!(l.rate(), Some(2.0));
}

#[tokio::test(start_paused = true)]
async fn tokens_wait_for_room_and_corrections_move_the_queue() {
    let l = leak(Limiter::builder("pacer::tpm").tokens_per_minute(60_000.0).build().map(Limiter::from_config).unwrap());
    let t0 = Instant::now();
    l.acquire_tokens(60_000).await; // the full minute's room
    assert_eq!(t0.elapsed(), Duration::ZERO);
    l.acquire_tokens(2_000).await; // 1,000 tokens a second
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    // It used only 500: 1,500 come back, so the next 1,500 go at once.
    l.correct_tokens(2_000, 500);
    l.acquire_tokens(1_500).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    // Token headers: the provider's rate and what remains.
    let h = leak(Limiter::new("pacer::token_headers"));
    h.observe(&headers(&[("x-ratelimit-limit-tokens", "6000"), ("x-ratelimit-remaining-tokens", "100")]));
    assert_eq!(h.stats().token_rate, Some(100.0));
    let t1 = Instant::now();
    h.acquire_tokens(300).await;
    assert_eq!(t1.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn slow_start_admits_a_window_that_grows_with_each_success() {
    let l = leak(Limiter::new("pacer::slow_start"));
    let in_flight = Arc::new(Mutex::new((0usize, 0usize)));
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                l.acquire().await;
                {
                    let mut f = in_flight.lock().unwrap();
                    f.0 += 1;
                    f.1 = f.1.max(f.0);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                in_flight.lock().unwrap().0 -= 1;
                l.record(false);
            })
        })
        .collect();
    tokio::time::sleep(500 * MS).await;
    assert_eq!(in_flight.lock().unwrap().0, 10, "the first window");
    assert_eq!(l.stats().window, Some(10));
    for t in tasks {
        t.await.unwrap();
    }
    // 10, then 20, then the last 10: each success lets two more go.
    assert_eq!(in_flight.lock().unwrap().1, 20);
    assert_eq!(l.stats().window, Some(50));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Headers with absurd, negative, non-numeric or contradictory values never panic, and a
    /// caller behind them never waits past its deadline (nor past the limiter's max pause).
    #[test]
    fn hostile_headers_never_panic_nor_stall_a_caller(
        values in prop::collection::vec(
            prop_oneof![
                "-?[0-9]{1,25}",
                "[0-9]{1,4}(ms|s|m|h)",
                "[0-9]{1,3}m[0-9]{1,2}s",
                "2025-12-0[1-9]T0[0-9]:00:00Z",
                ".{0,12}",
                Just("NaN".to_string()),
                Just("1e308".to_string()),
            ],
            12,
        ),
    ) {
        const NAMES: [&str; 12] = [
            "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
            "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
            "anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset",
        ];
        let pairs: Vec<(&'static str, &str)> = NAMES.iter().copied().zip(values.iter().map(String::as_str)).collect();
        let h = headers(&pairs);
        let waited = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
            let l = leak(Limiter::new("pacer::hostile"));
            l.observe(&h);
            l.throttled(Some(Duration::MAX));
            l.observe(&h);
            let t0 = Instant::now();
            let out: Result<(), ApiError> =
                Policy::DEFAULT.call().limiter(l).deadline(Duration::from_secs(3)).retry(|| async { Ok(()) }).await;
            let _ = out;
            l.acquire_tokens(u64::MAX).await;
            let _ = l.stats();
            t0.elapsed()
        });
        // The deadline bounds the call; the max pause (120 s) bounds the bare acquire, and an
        // unaffordable token cost waits at most a minute's refill after it.
        prop_assert!(waited <= Duration::from_secs(3 + 120 + 61), "{waited:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_cut_while_it_waits_for_tokens_gives_them_back() {
    let l = leak(Limiter::builder("pacer::cut").tokens_per_minute(60_000.0).build().map(Limiter::from_config).unwrap());
    l.acquire_tokens(60_000).await; // the room is empty: 1,000 tokens a second from now
    let t0 = Instant::now();
    let cut: Result<(), ApiError> = Policy::DEFAULT
        .call()
        .limiter(l)
        .tokens(30_000)
        .deadline(Duration::from_secs(1))
        .retry(|| async { Ok(()) })
        .await;
    assert_eq!(cut.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    // The 30,000 it reserved went back: the next call's 10,000 are due 10 s after the start,
    // not 40 s.
    let next: Result<(), ApiError> = Policy::DEFAULT.call().limiter(l).tokens(10_000).retry(|| async { Ok(()) }).await;
    next.unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(10) && took <= Duration::from_millis(10_100), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn an_open_limiter_pauses_on_a_throttle_and_starts_slow_again() {
    let l = leak(Limiter::new("pacer::reopen"));
    // Past its slow start without a throttle: open, nothing to pace.
    for _ in 0..1_100 {
        l.acquire().await;
        l.record(false);
    }
    assert_eq!((l.stats().window, l.rate()), (None, None));
    l.throttled(Some(Duration::from_secs(1)));
    let s = starts(l, 12).await;
    assert!(s[0] >= Duration::from_secs(1), "the pause holds an open limiter's callers too: {s:?}");
    // Then a window of 10 at a time again, refilled by responses (none here) or the floor rate.
    assert_eq!(s.iter().filter(|t| **t < Duration::from_millis(1_500)).count(), 10, "{s:?}");
    assert_eq!(l.stats().throttles, 1);
}

/// A stream's attempts go through the call's limiter like any other: its opener runs only
/// once the pause a builder call's 429 set is over, the first-chunk timeout does not run
/// while it queues, and its own 429 pauses the other callers.
#[tokio::test(start_paused = true)]
async fn stream_attempts_are_paced_by_the_calls_limiter() {
    use futures_util::StreamExt;
    use llm_retry_runtime::stream::StreamEvent;
    let l = leak(Limiter::new("pacer::stream"));
    l.throttled(Some(Duration::from_secs(2)));
    let t0 = Instant::now();
    let opened = Arc::new(Mutex::new(Vec::new()));
    let seen = opened.clone();
    let mut n = 0;
    let stream = Policy::DEFAULT.call::<(), ApiError>().limiter(l).stream(move |_resume| {
        n += 1;
        let first = n == 1;
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(t0.elapsed());
            if first {
                return Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(1))));
            }
            Ok(futures_util::stream::iter([Ok::<_, ApiError>("hi".to_string())]))
        }
    });
    let stream = stream.first_chunk_timeout(Duration::from_millis(500));
    let events: Vec<_> = stream.collect().await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Ok(StreamEvent::Chunk(c)) if c == "hi")), "{events:?}");
    let opened = opened.lock().unwrap().clone();
    // Opened when the 2 s pause ended (not cut by the 500 ms first-chunk timeout while it
    // queued), then after its own 429's second, which paused the limiter too.
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(opened[0], Duration::from_secs(2));
    assert!(opened[1] >= Duration::from_secs(3), "{opened:?}");
    assert_eq!(l.stats().throttles, 2);
}

/// One step of the model-free property below.
#[derive(Debug, Clone)]
enum Op {
    /// An attempt that waits at most this long (ms) for the limiter, then gives up.
    Acquire(u64, u64),
    Response,
    Throttle(Option<u64>),
    Observe(u64, u64, u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..3_000, 0u64..5_000).prop_map(|(w, t)| Op::Acquire(w, t)),
        Just(Op::Response),
        prop::option::of(0u64..5_000).prop_map(Op::Throttle),
        (0u64..1_000, 0u64..20, 0u64..3_000).prop_map(|(l, r, s)| Op::Observe(l, r, s)),
        (0u64..2_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the limiter is told in whatever order (responses, throttles with and without
    /// hints, headers, attempts with and without token costs, given up at any point), it never
    /// panics, its queue returns to rest once every waiter is gone, and an attempt behind it
    /// waits no longer than its own limit.
    #[test]
    fn any_sequence_of_events_leaves_the_queue_at_rest(ops in prop::collection::vec(op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
            let l = leak(Limiter::builder("pacer::any").tokens_per_minute(6_000.0).build().map(Limiter::from_config).unwrap());
            let mut waiters = Vec::new();
            for op in ops {
                match op {
                    Op::Acquire(wait, tokens) => waiters.push(tokio::spawn(async move {
                        let t0 = Instant::now();
                        let _ = tokio::time::timeout(Duration::from_millis(wait), l.acquire_tokens(tokens)).await;
                        t0.elapsed() <= Duration::from_millis(wait + 1)
                    })),
                    Op::Response => l.record(false),
                    Op::Throttle(hint) => l.throttled(hint.map(Duration::from_millis)),
                    Op::Observe(limit, left, reset) => {
                        let limit = limit.to_string();
                        let left = left.to_string();
                        let reset = format!("{reset}ms");
                        l.observe(&headers(&[
                            ("x-ratelimit-limit-requests", &limit),
                            ("x-ratelimit-remaining-requests", &left),
                            ("x-ratelimit-reset-requests", &reset),
                            ("x-ratelimit-remaining-tokens", &left),
                        ]));
                    }
                    Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                }
                tokio::task::yield_now().await;
            }
            for w in waiters {
                assert!(w.await.unwrap(), "a waiter outlived its own limit");
            }
            assert_eq!(l.stats().queued, 0, "{:?}", l.stats());
        });
    }
}
