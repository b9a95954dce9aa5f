//! Batches along a fallback chain, in paused time: each item moves along the chain as a plain
//! call does (at once on ContextLengthExceeded, after the target's attempts on a retryable
//! kind, never on Auth), a breaker opened by one item sends the later ones straight to the
//! next target, no target left ends an item with "circuit open", the batch's limiter paces
//! the attempts on every target, and a cancelled batch releases a half-open probe.
//!
//! `cargo test -p llm-retry-runtime --all-features --test it batch_failover::`

use llm_retry_runtime::failover::{Breaker, BreakerState, Fallback, Target};
use llm_retry_runtime::{
    ApiError, Backoff, ErrorKind, Jitter, Limiter, Policy, RetryExt, http::RetryAfter, stats::Site,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// 2 attempts per target, a fixed 1 s backoff, no jitter: delays are exact.
const POLICY: Policy = match Policy::builder()
    .max_attempts(2)
    .backoff(Backoff::Fixed { delay: Duration::from_secs(1) })
    .jitter(Jitter::None)
    .build()
{
    Ok(p) => p,
    Err(_) => panic!("invalid policy"),
};

const fn chain(targets: &'static [&'static Target]) -> Fallback<'static> {
    match Fallback::new(targets) {
        Ok(c) => c,
        Err(_) => panic!("no targets"),
    }
}

const fn breaker(name: &'static str, consecutive: u32) -> Breaker {
    match Breaker::builder(name).consecutive_failures(consecutive).cooldown(Duration::from_secs(30)).build() {
        Ok(b) => b,
        Err(_) => panic!("invalid breaker"),
    }
}

/// One attempt: its item, its target's name, and when it started (since `t0`).
type Seen = (usize, &'static str, Duration);

/// Records every attempt.
#[derive(Clone)]
struct Log {
    t0: Instant,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Log {
    fn new() -> Log {
        Log { t0: Instant::now(), seen: Arc::default() }
    }

    /// Records an attempt; returns how many attempts `item` made on `target`, this one included.
    fn saw(&self, item: usize, target: &'static Target) -> usize {
        let mut seen = self.seen.lock().unwrap();
        seen.push((item, target.name(), self.t0.elapsed()));
        seen.iter().filter(|(i, t, _)| *i == item && *t == target.name()).count()
    }

    /// The targets of `item`'s attempts, in order.
    fn of(&self, item: usize) -> Vec<&'static str> {
        self.seen.lock().unwrap().iter().filter(|(i, ..)| *i == item).map(|(_, t, _)| *t).collect()
    }

    fn on(&self, target: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|(_, t, _)| *t == target).count()
    }
}

static A: Target = Target::new("a");
static B: Target = Target::new("b");
static AB: Fallback<'static> = chain(&[&A, &B]);

#[tokio::test(start_paused = true)]
async fn each_item_moves_along_the_chain_like_a_plain_call() {
    static SITE: Site = Site::new("batch_failover::items", POLICY);
    let log = Log::new();
    let batch = POLICY.batch().concurrency(4).site(&SITE).build().unwrap();
    let results = batch
        .fallback(AB)
        .run(0..4usize, |target: &'static Target, item: usize| {
            let n = log.saw(item, target);
            async move {
                match (item, target.name()) {
                    (0, _) => Ok(item),
                    (1, "a") => Err(ApiError::new(ErrorKind::ContextLengthExceeded, "maximum context length")),
                    (2, "a") => Err(ApiError::from_status(503)),
                    (3, "a") => Err(ApiError::from_status(401)),
                    _ => Ok(item * 10 + n),
                }
            }
        })
        .await;
    let seen: Vec<_> = results
        .iter()
        .map(|r| (r.target.map(Target::name), r.attempts, r.outcome.as_ref().map_err(ApiError::kind).copied()))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("a"), 1, Ok(0)),
            (Some("b"), 2, Ok(11)),               // context length: at once to b
            (Some("b"), 3, Ok(21)),               // two 503s on a (its 2 attempts), then b
            (Some("a"), 1, Err(ErrorKind::Auth)), // Auth ends the item on a
        ]
    );
    assert_eq!((log.of(1), log.of(2), log.of(3)), (vec!["a", "b"], vec!["a", "a", "b"], vec!["a"]));
    assert_eq!(results[1].elapsed, Duration::ZERO, "no back-off before b");
    assert_eq!(results[2].elapsed, Duration::from_secs(1), "one back-off on a, none before b");
    let st = SITE.stats();
    assert_eq!((st.calls, st.successes, st.attempts), (4, 3, 7));
}

#[tokio::test(start_paused = true)]
async fn progress_counts_moves_apart_from_retries() {
    let batch = POLICY.batch().build().unwrap();
    let log = Log::new();
    let op = |target: &'static Target, item: usize| {
        log.saw(item, target);
        async move { if target.name() == "a" { Err(ApiError::from_status(503)) } else { Ok(item) } }
    };
    let mut results = batch.fallback(AB).stream(0..3usize, op);
    while futures_util::StreamExt::next(&mut results).await.is_some() {}
    let p = results.progress();
    assert_eq!((p.succeeded, p.retries, p.moved_on), (3, 3, 3), "one retry on a, then one move, per item");
    assert_eq!(log.on("a"), 6);

    // Without a chain nothing moves, and no result names a target.
    let plain = batch.run(0..3usize, |i| async move { Ok::<_, ApiError>(i) }).await;
    assert!(plain.iter().all(|r| r.target.is_none()));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opened_by_one_item_sends_the_later_ones_straight_to_the_next_target() {
    static BR: Breaker = breaker("primary", 2);
    static PRIMARY: Target = Target::new("primary").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &B]);
    let log = Log::new();
    // One at a time, so the order is exact.
    let batch = POLICY.batch().concurrency(1).build().unwrap();
    let results = batch
        .fallback(CHAIN)
        .run(0..5usize, |target: &'static Target, item: usize| {
            log.saw(item, target);
            async move { if target.name() == "primary" { Err(ApiError::from_status(503)) } else { Ok(item) } }
        })
        .await;
    assert!(results.iter().all(|r| r.is_ok() && r.target == Some(&B)));
    assert_eq!(log.of(0), ["primary", "primary", "b"], "the second failure opens the breaker");
    for r in &results[1..] {
        assert_eq!(log.of(r.index), ["b"], "item {} skips the open breaker", r.index);
        assert_eq!((r.attempts, r.elapsed), (1, Duration::ZERO));
    }
    assert_eq!(BR.state(), BreakerState::Open);
    assert_eq!(BR.stats().refused, 4);
}

#[tokio::test(start_paused = true)]
async fn no_target_left_ends_each_item_with_circuit_open_and_no_attempt() {
    static BR: Breaker = breaker("down", 1);
    static DOWN: Target = Target::new("down").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&DOWN]);
    let log = Log::new();
    let batch = POLICY.batch().concurrency(1).build().unwrap();
    let op = |target: &'static Target, item: usize| {
        log.saw(item, target);
        async { Err::<(), _>(ApiError::from_status(503)) }
    };
    let results = batch.fallback(CHAIN).run(0..3usize, op).await;
    assert_eq!(results[0].outcome.as_ref().unwrap_err().status(), Some(503), "opened the breaker");
    for r in &results[1..] {
        let e = r.outcome.as_ref().unwrap_err();
        assert_eq!(e.to_string(), "Overloaded: circuit open for `down`, until 30.0 s from now");
        assert_eq!((r.attempts, r.target), (0, None));
    }
    assert_eq!(log.on("down"), 1);
}

#[tokio::test(start_paused = true)]
async fn the_batchs_limiter_paces_the_attempts_on_every_target() {
    const ONCE: Policy = match Policy::builder().max_attempts(1).build() {
        Ok(p) => p,
        Err(_) => panic!("invalid policy"),
    };
    static ENDPOINT: Limiter = Limiter::new("batch_failover::endpoint");
    let log = Log::new();
    let batch = ONCE.batch().concurrency(1).limiter(&ENDPOINT).build().unwrap();
    let results = batch
        .fallback(AB)
        .run([0usize], |target: &'static Target, item: usize| {
            log.saw(item, target);
            async move {
                match target.name() {
                    "a" => Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(2)))),
                    _ => Ok(item),
                }
            }
        })
        .await;
    assert_eq!(results[0].target, Some(&B));
    let times: Vec<_> = log.seen.lock().unwrap().iter().map(|(_, t, at)| (*t, *at)).collect();
    // a's throttle holds the limiter 2 s; the move to b is at once, its attempt waits for it.
    assert_eq!(times, [("a", Duration::ZERO), ("b", Duration::from_secs(2))]);
    assert_eq!(results[0].rate_limited, 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_batch_releases_its_half_open_probe() {
    static BR: Breaker = breaker("probe", 1);
    static PRIMARY: Target = Target::new("probe").breaker(&BR);
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY]);
    let batch = POLICY.batch().build().unwrap();
    let fail = |_: &'static Target, _: usize| async { Err::<(), _>(ApiError::from_status(503)) };
    batch.fallback(CHAIN).run([0usize], fail).await;
    assert_eq!(BR.state(), BreakerState::Open);
    tokio::time::advance(BR.cooldown()).await;

    // The probe hangs; the batch is cancelled around it.
    let hung = batch.fallback(CHAIN).run([0usize], |_, _| std::future::pending::<Result<(), ApiError>>());
    assert!(tokio::time::timeout(Duration::from_secs(1), hung).await.is_err());
    assert_eq!(BR.state(), BreakerState::HalfOpen);
    let ok = batch.fallback(CHAIN).run([0usize], |_, i| async move { Ok::<_, ApiError>(i) }).await;
    assert!(ok[0].is_ok(), "the next item took the released probe");
    assert_eq!(BR.state(), BreakerState::Closed);
    assert_eq!(BR.stats().probes, 2);
}
