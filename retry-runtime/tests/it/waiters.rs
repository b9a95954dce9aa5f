//! Cancellation of every queue and waiter in the runtime: a waiter dropped at any poll point
//! (a timeout, a deadline, a cancelled call or batch, a dropped stream) leaves nothing behind.
//! The waiters behind it are served on time, and the counters return to rest.
//!
//! Each case runs in its own paused-time runtime, so a property's cases are independent and
//! exact to the microsecond.

use futures_util::StreamExt;
use llm_retry_runtime::{
    ApiError, Backoff, Jitter, Limiter, Policy, RetryExt, http::RetryAfter, stats::Site, stats::SiteStats,
    stream::Resume,
};
use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

fn paused<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(f)
}

/// Throttles `limiter` until it gates at its floor, 0.5 requests a second: the first throttle
/// arms it, and one a measured bucket later, with nothing admitted, cuts it to the floor.
async fn gate_at_floor(limiter: &'static Limiter) {
    limiter.record(true);
    tokio::time::sleep(1_100 * MS).await;
    limiter.record(true);
    assert_eq!(limiter.rate(), Some(0.5));
}

/// When each surviving ticket of a floor-rate queue (tickets `1..=n`, taken at time 0) comes
/// up, given when the others are dropped: the bucket makes 0.5 tokens a second, ticket `k`
/// goes once `k` tokens less the tickets ahead of it already dropped are made, so a drop moves
/// up the tickets behind it and leaves those ahead alone.
fn expected_turns(cancel_at: &[Option<Duration>]) -> Vec<Option<Duration>> {
    const RATE: f64 = 0.5;
    // `returned` holds (ticket, when) of the effective drops so far.
    let turn = |k: usize, returned: &[(usize, f64)]| {
        let mut ahead: Vec<f64> = returned.iter().filter(|&&(j, _)| j < k).map(|&(_, at)| at).collect();
        ahead.sort_by(f64::total_cmp);
        // Between two drops ahead, the place is fixed and the tokens grow linearly.
        let mut from = 0.0;
        for (n, p) in ahead.iter().copied().chain([f64::INFINITY]).enumerate() {
            let due = (((k - n) as f64) / RATE).max(from);
            if due < p {
                return due;
            }
            from = p;
        }
        unreachable!()
    };
    let mut order: Vec<(usize, f64)> =
        cancel_at.iter().enumerate().filter_map(|(i, c)| c.map(|c| (i + 1, c.as_secs_f64()))).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut returned = Vec::new();
    for (k, c) in order {
        // A waiter whose turn came before its cancellation has already gone: nothing to return.
        if turn(k, &returned) > c {
            returned.push((k, c));
        }
    }
    (1..=cancel_at.len())
        .map(|k| (!returned.iter().any(|&(j, _)| j == k)).then(|| Duration::from_secs_f64(turn(k, &returned))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Limiter: n waiters queue at the floor rate, some are dropped at arbitrary instants
    /// (odd quarter seconds, never on a turn). Every other waiter goes exactly on its turn as
    /// if the dropped ones had never queued, and the queue ends empty.
    #[test]
    fn limiter_waiters_dropped_anywhere_give_their_places_back(
        cancels in prop::collection::vec(prop::option::weighted(0.4, 0u64..40), 1..10),
    ) {
        let cancel_at: Vec<Option<Duration>> =
            cancels.iter().map(|c| c.map(|q| Duration::from_millis(250 + 500 * q))).collect();
        let expected = expected_turns(&cancel_at);
        let went = paused(async move {
            let limiter: &'static Limiter = Box::leak(Box::new(Limiter::new("waiters::limiter")));
            gate_at_floor(limiter).await;
            let start = Instant::now();
            let went = Arc::new(Mutex::new(vec![None; cancel_at.len()]));
            let mut handles = Vec::new();
            for i in 0..cancel_at.len() {
                let went = went.clone();
                handles.push(tokio::spawn(async move {
                    limiter.acquire().await;
                    went.lock().unwrap()[i] = Some(start.elapsed());
                }));
                // Each takes its ticket before the next one is spawned.
                tokio::task::yield_now().await;
            }
            let mut order: Vec<(usize, Duration)> =
                cancel_at.iter().enumerate().filter_map(|(i, c)| c.map(|c| (i, c))).collect();
            order.sort_by_key(|&(_, c)| c);
            for (i, c) in order {
                tokio::time::sleep_until(start + c).await;
                handles[i].abort();
            }
            for h in handles {
                let _ = h.await;
            }
            assert_eq!(limiter.stats().queued, 0, "the queue returns to rest");
            went.lock().unwrap().clone()
        });
        for (i, (got, want)) in went.iter().zip(&expected).enumerate() {
            match want {
                Some(want) => {
                    let got = got.unwrap_or_else(|| panic!("waiter {i} never went"));
                    prop_assert!(got.abs_diff(*want) <= MS, "waiter {i}: went at {got:?}, its turn was {want:?}");
                }
                None => prop_assert!(got.is_none(), "waiter {i} was dropped before its turn, yet went"),
            }
        }
    }

    /// Batch: a rate-limited batch dropped at an arbitrary instant counts every call it started
    /// exactly once (a success, a give-up, or cancelled), and leaves no gate behind: the next
    /// batch starts at once.
    #[test]
    fn a_batch_dropped_anywhere_leaves_its_counters_at_rest(drop_at in 0u64..3_000) {
        paused(async move {
            let site: &'static Site = Box::leak(Box::new(Site::new("waiters::batch", Policy::DEFAULT)));
            let batch = Policy::DEFAULT.batch().concurrency(4).site(site).build().unwrap();
            let tries = Arc::new(Mutex::new(0u32));
            let op = {
                let tries = tries.clone();
                move |n: u32| {
                    let first = {
                        let mut t = tries.lock().unwrap();
                        *t += 1;
                        *t % 3 == 1
                    };
                    async move {
                        tokio::time::sleep(Duration::from_millis(u64::from(n % 5) * 40)).await;
                        if first {
                            Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(500 * MS)))
                        } else {
                            Ok(n)
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(drop_at), batch.run(0..16u32, op)).await;
            assert_at_rest(&site.stats());
            let start = Instant::now();
            let again = batch.run(0..4u32, |n| async move { Ok::<_, ApiError>(n) }).await;
            assert_eq!(again.len(), 4);
            assert_eq!(start.elapsed(), Duration::ZERO, "no hold outlives the dropped batch");
            assert_at_rest(&site.stats());
        });
    }

    /// Stream: a retrying stream dropped at an arbitrary instant (opening, reading, or
    /// sleeping before a reconnect) counts its call once, as cancelled or finished.
    #[test]
    fn a_stream_dropped_anywhere_leaves_its_counters_at_rest(drop_at in 0u64..2_000) {
        paused(async move {
            let site: &'static Site = Box::leak(Box::new(Site::new("waiters::stream", POLICY)));
            let opens = Arc::new(Mutex::new(0u32));
            let events = POLICY.call().site(site).stream(move |_: Resume| {
                let opens = opens.clone();
                async move {
                    let n = {
                        let mut o = opens.lock().unwrap();
                        *o += 1;
                        *o
                    };
                    tokio::time::sleep(30 * MS).await;
                    let chunks = (0..3).map(move |i| {
                        if n < 3 && i == 2 { Err(ApiError::connection("cut")) } else { Ok(format!("{n}.{i} ")) }
                    });
                    Ok::<_, ApiError>(futures_util::stream::iter(chunks).then(|c| async move {
                        tokio::time::sleep(50 * MS).await;
                        c
                    }))
                }
            });
            let mut events = Box::pin(events);
            let _ = tokio::time::timeout(Duration::from_millis(drop_at), async {
                while events.next().await.is_some() {}
            })
            .await;
            drop(events);
            assert_at_rest(&site.stats());
        });
    }
}

const POLICY: Policy = match Policy::builder()
    .max_attempts(5)
    .backoff(Backoff::Fixed { delay: Duration::from_millis(200) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!(),
};

/// Every call the site has counted ended exactly once.
fn assert_at_rest(s: &SiteStats) {
    let ended = s.successes + s.gave_up.iter().sum::<u64>() + s.cancelled + s.panicked;
    assert_eq!(s.calls, ended, "every counted call ended once: {s:?}");
}

/// The defect this file was written for: 20 waiters that each gave up after 10 ms at the
/// floor rate (0.5/s) kept their tickets, and the next caller waited about 42 s for requests
/// that were never sent. One token period, 2 s, is the most it may wait.
#[tokio::test(start_paused = true)]
async fn a_dropped_limiter_waiter_gives_its_place_back() {
    static L: Limiter = Limiter::new("waiters::dropped");
    gate_at_floor(&L).await;
    for _ in 0..20 {
        assert!(tokio::time::timeout(10 * MS, L.acquire()).await.is_err());
    }
    assert_eq!(L.stats().queued, 0);
    let start = Instant::now();
    L.acquire().await;
    assert!(start.elapsed() <= Duration::from_secs(2), "waited {:?}", start.elapsed());
}

#[test]
fn the_turn_model_moves_the_queue_up_for_each_early_drop() {
    let s = Duration::from_secs;
    let q = |ms: u64| Some(Duration::from_millis(ms));
    // No drops: tickets every 2 s.
    assert_eq!(expected_turns(&[None, None]), [Some(s(2)), Some(s(4))]);
    // Ticket 1 dropped at 1.25 s: ticket 2 comes up when ticket 1 would have, at 2 s.
    assert_eq!(expected_turns(&[q(1_250), None, None]), [None, Some(s(2)), Some(s(4))]);
    // Ticket 2 dropped at 3.25 s: ticket 1 went at 2 s; ticket 3 moves up to ticket 2's turn.
    assert_eq!(expected_turns(&[None, q(3_250), None]), [Some(s(2)), None, q(4_000)]);
    // The last ticket dropped: those ahead keep their turns.
    assert_eq!(expected_turns(&[None, None, q(250)]), [Some(s(2)), Some(s(4)), None]);
    // Ticket 1 dropped after its turn (2 s): it had gone, so nothing moves.
    assert_eq!(expected_turns(&[q(2_250), None]), [Some(s(2)), Some(s(4))]);
}
