//! The engine's behaviour in paused time: attempts, delays, per-kind limits, Retry-After,
//! the deadline and the attempt timeout, validation, hooks and stats.

use llm_retry_runtime::{
    Backoff, Classification, Classify, ErrorKind, GiveUp, InvalidOutput, Jitter, Policy, RetryEvent, RetryExt, RetryOn,
    Rule, Timeout, call::DelaySource, http::RetryAfter, policy::Problem, rng::seed_thread_rng, stats::Site,
};
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct Fail {
    kind: ErrorKind,
    status: Option<u16>,
    hint: Option<RetryAfter>,
    should_retry: Option<bool>,
}

impl Fail {
    fn kind(kind: ErrorKind) -> Self {
        Fail { kind, status: None, hint: None, should_retry: None }
    }
    fn status(s: u16) -> Self {
        Fail { status: Some(s), ..Fail::kind(ErrorKind::from_status(s)) }
    }
    fn hint(mut self, d: Duration) -> Self {
        self.hint = Some(RetryAfter::Delay(d));
        self
    }
}

impl Classify for Fail {
    fn classify(&self) -> Classification {
        let mut c = Classification::new(self.kind);
        if let Some(s) = self.status {
            c = c.with_status(s);
        }
        if let Some(h) = self.hint {
            c = c.with_retry_after(h);
        }
        if let Some(b) = self.should_retry {
            c = c.with_should_retry(b);
        }
        c
    }
}

impl From<Timeout> for Fail {
    fn from(_: Timeout) -> Self {
        Fail::kind(ErrorKind::Timeout)
    }
}

impl From<InvalidOutput> for Fail {
    fn from(_: InvalidOutput) -> Self {
        Fail::kind(ErrorKind::InvalidOutput)
    }
}

const MS: Duration = Duration::from_millis(1);

const fn policy(b: llm_retry_runtime::PolicyBuilder) -> Policy {
    match b.build() {
        Ok(p) => p,
        Err(_) => panic!("invalid test policy"),
    }
}

const FIXED_100: Policy = policy(
    Policy::builder()
        .max_attempts(5)
        .backoff(Backoff::Fixed { delay: Duration::from_millis(100) })
        .jitter(Jitter::None),
);

const EXP: Policy = policy(
    Policy::builder()
        .max_attempts(6)
        .backoff(Backoff::Exponential {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(1000),
        })
        .jitter(Jitter::None),
);

/// Runs a scripted operation: the i-th attempt returns `script[i]` (the last repeats).
/// Returns the result and the instants (since start) at which each attempt began.
async fn run_script<M>(
    call: llm_retry_runtime::call::Call<
        '_,
        u32,
        Fail,
        llm_retry_runtime::call::Hooks,
        llm_retry_runtime::call::Controls,
        M,
    >,
    script: Vec<Result<u32, Fail>>,
) -> (Result<u32, Fail>, Vec<Duration>)
where
    M: llm_retry_runtime::call::Mode<Fail>,
{
    let start = Instant::now();
    let times = RefCell::new(Vec::new());
    let i = AtomicU32::new(0);
    let out = call
        .retry(|| {
            times.borrow_mut().push(start.elapsed());
            let k = i.fetch_add(1, Ordering::Relaxed) as usize;
            let r = script[k.min(script.len() - 1)].clone();
            async move { r }
        })
        .await;
    (out, times.into_inner())
}

#[tokio::test(start_paused = true)]
async fn retries_until_success_with_exact_delays() {
    let (out, times) = run_script(
        EXP.call(),
        vec![Err(Fail::status(500)), Err(Fail::status(503)), Err(Fail::kind(ErrorKind::Connection)), Ok(7)],
    )
    .await;
    assert_eq!(out, Ok(7));
    assert_eq!(times, [Duration::ZERO, 100 * MS, 300 * MS, 700 * MS]);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let (out, times) = run_script(FIXED_100.call(), vec![Err(Fail::status(502))]).await;
    assert_eq!(out, Err(Fail::status(502)));
    assert_eq!(times.len(), 5);
    assert_eq!(times[4], 400 * MS);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_returned_at_once() {
    for e in [
        Fail::status(401),
        Fail::status(400),
        Fail::kind(ErrorKind::QuotaExhausted),
        Fail::kind(ErrorKind::ContextLengthExceeded),
    ] {
        let (out, times) = run_script(FIXED_100.call(), vec![Err(e.clone()), Ok(1)]).await;
        assert_eq!(out, Err(e));
        assert_eq!(times.len(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn seeded_jitter_is_reproducible() {
    const FULL: Policy = policy(Policy::builder().max_attempts(6).jitter(Jitter::Full));
    let mut runs = Vec::new();
    for _ in 0..2 {
        seed_thread_rng(1234);
        let (_, times) = run_script(FULL.call(), vec![Err(Fail::status(500))]).await;
        runs.push(times);
    }
    assert_eq!(runs[0], runs[1]);
    seed_thread_rng(99);
    let (_, other) = run_script(FULL.call(), vec![Err(Fail::status(500))]).await;
    assert_ne!(runs[0], other);
    // Full jitter: each gap is at most the exponential delay (500ms, 1s, 2s, 4s, 8s).
    for (i, w) in runs[0].windows(2).enumerate() {
        assert!(w[1] - w[0] <= Duration::from_millis(500) * 2u32.pow(i as u32));
    }
}

#[tokio::test(start_paused = true)]
async fn per_kind_limits_cap_attempts_caused_by_that_kind() {
    const TABLE: Policy = policy(
        Policy::builder()
            .max_attempts(10)
            .backoff(Backoff::Fixed { delay: Duration::from_millis(10) })
            .jitter(Jitter::None)
            .rule(
                Rule::kind(ErrorKind::RateLimited)
                    .max_attempts(3)
                    .backoff(Backoff::Fixed { delay: Duration::from_secs(60) }),
            )
            .rule(Rule::kind(ErrorKind::Connection).max_attempts(5))
            .rule(Rule::status(502).max_attempts(2))
            .rule(Rule::status(500).max_attempts(3)),
    );
    let (out, times) = run_script(TABLE.call(), vec![Err(Fail::status(429))]).await;
    assert_eq!(out.unwrap_err().status, Some(429));
    assert_eq!(times, [Duration::ZERO, Duration::from_secs(60), Duration::from_secs(120)]);

    let (_, times) = run_script(TABLE.call(), vec![Err(Fail::status(502))]).await;
    assert_eq!(times.len(), 2);
    let (_, times) = run_script(TABLE.call(), vec![Err(Fail::kind(ErrorKind::Connection))]).await;
    assert_eq!(times.len(), 5);
    // 503 has no rule: the overall maximum holds.
    let (_, times) = run_script(TABLE.call(), vec![Err(Fail::status(503))]).await;
    assert_eq!(times.len(), 10);
    // Mixed kinds: each kind's own count, and the overall maximum over all.
    let script =
        vec![Err(Fail::status(502)), Err(Fail::status(500)), Err(Fail::status(500)), Err(Fail::status(502)), Ok(1)];
    let (out, times) = run_script(TABLE.call(), script).await;
    assert_eq!(out, Err(Fail::status(502)));
    assert_eq!(times.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_a_floor_with_a_small_jitter() {
    let (out, times) =
        run_script(FIXED_100.call(), vec![Err(Fail::status(429).hint(Duration::from_secs(2))), Ok(1)]).await;
    assert_eq!(out, Ok(1));
    assert!(times[1] >= Duration::from_secs(2) && times[1] <= Duration::from_millis(2200), "{:?}", times[1]);
}

#[tokio::test(start_paused = true)]
async fn clients_told_the_same_instant_spread_out() {
    let mut gaps = Vec::new();
    for _ in 0..20 {
        let (_, times) =
            run_script(FIXED_100.call(), vec![Err(Fail::status(429).hint(Duration::from_secs(1))), Ok(1)]).await;
        gaps.push(times[1]);
    }
    gaps.sort();
    gaps.dedup();
    assert!(gaps.len() > 10, "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_over_the_cap_gives_up_at_once() {
    static SITE: Site = Site::new("engine::over_cap", FIXED_100);
    let (out, times) =
        run_script(FIXED_100.call().site(&SITE), vec![Err(Fail::status(429).hint(Duration::from_secs(3600))), Ok(1)])
            .await;
    assert!(out.is_err());
    assert_eq!(times.len(), 1);
    assert_eq!(SITE.stats().gave_up(GiveUp::RetryAfterTooLong), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_dates_use_the_injected_clock() {
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }
    const P: Policy = policy(
        Policy::builder()
            .wall_clock(now)
            .backoff(Backoff::Fixed { delay: Duration::from_millis(1) })
            .jitter(Jitter::None),
    );
    let at = |s: u64| Fail { hint: Some(RetryAfter::At(now() + Duration::from_secs(s))), ..Fail::status(503) };
    let (out, times) = run_script(P.call(), vec![Err(at(3)), Ok(1)]).await;
    assert_eq!(out, Ok(1));
    assert!(times[1] >= Duration::from_secs(3) && times[1] <= Duration::from_millis(3300));
    // A date in the past falls back to the backoff.
    let past = Fail { hint: Some(RetryAfter::At(now() - Duration::from_secs(30))), ..Fail::status(503) };
    let (_, times) = run_script(P.call(), vec![Err(past), Ok(1)]).await;
    assert_eq!(times[1], MS);
}

#[tokio::test(start_paused = true)]
async fn retry_after_can_be_ignored() {
    const P: Policy = policy(
        Policy::builder()
            .respect_retry_after(false)
            .backoff(Backoff::Fixed { delay: Duration::from_millis(5) })
            .jitter(Jitter::None),
    );
    let (_, times) = run_script(P.call(), vec![Err(Fail::status(429).hint(Duration::from_secs(3600))), Ok(1)]).await;
    assert_eq!(times[1], 5 * MS);
}

#[tokio::test(start_paused = true)]
async fn x_should_retry_overrides_the_classification() {
    let no = Fail { should_retry: Some(false), ..Fail::status(503) };
    let (_, times) = run_script(FIXED_100.call(), vec![Err(no), Ok(1)]).await;
    assert_eq!(times.len(), 1);
    let yes = Fail { should_retry: Some(true), ..Fail::status(400) };
    let (out, times) = run_script(FIXED_100.call(), vec![Err(yes), Ok(1)]).await;
    assert_eq!((out, times.len()), (Ok(1), 2));
}

#[tokio::test(start_paused = true)]
async fn retry_on_limits_what_is_retried() {
    const ONLY_503: Policy = policy(Policy::builder().retry_on(RetryOn::none().status(503)));
    let (_, t) = run_script(ONLY_503.call(), vec![Err(Fail::status(500)), Ok(1)]).await;
    assert_eq!(t.len(), 1);
    let (out, t) = run_script(ONLY_503.call(), vec![Err(Fail::status(503)), Ok(1)]).await;
    assert_eq!((out, t.len()), (Ok(1), 2));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_crossed_by_a_sleep() {
    static SITE: Site = Site::new("engine::deadline", EXP);
    // Delays 100, 200, 400: at 700 ms the next 800 ms would cross a 1 s deadline.
    let (out, times) =
        run_script(EXP.call().site(&SITE).deadline(Duration::from_secs(1)), vec![Err(Fail::status(500))]).await;
    assert!(out.is_err());
    assert_eq!(times, [Duration::ZERO, 100 * MS, 300 * MS, 700 * MS]);
    assert_eq!(SITE.stats().gave_up(GiveUp::Deadline), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_counts_time_inside_attempts_and_cuts_the_last_one() {
    let start = Instant::now();
    let out: Result<u32, Fail> = FIXED_100
        .call()
        .deadline(Duration::from_millis(250))
        .retry(|| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(Fail::status(500))
        })
        .await;
    // 0-100 attempt, 100-200 sleep, 200-250 attempt cut by the deadline.
    assert_eq!(out, Err(Fail::kind(ErrorKind::Timeout)));
    assert_eq!(start.elapsed(), 250 * MS);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_that_lands_past_the_deadline_gives_up_now() {
    let start = Instant::now();
    let (out, times) = run_script(
        FIXED_100.call().deadline(Duration::from_secs(10)),
        vec![Err(Fail::status(429).hint(Duration::from_secs(30))), Ok(1)],
    )
    .await;
    assert!(out.is_err());
    assert_eq!(times.len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_times_out_and_is_retried() {
    let start = Instant::now();
    let n = AtomicU32::new(0);
    let out: Result<u32, Fail> = FIXED_100
        .call()
        .attempt_timeout(Duration::from_secs(30))
        .retry(|| {
            let k = n.fetch_add(1, Ordering::Relaxed);
            async move {
                if k == 0 {
                    std::future::pending::<()>().await;
                }
                Ok(k)
            }
        })
        .await;
    assert_eq!(out, Ok(1));
    assert_eq!(start.elapsed(), Duration::from_secs(30) + 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn validate_retries_unusable_values_and_converts_the_last() {
    let n = AtomicU32::new(0);
    let out: Result<u32, Fail> = FIXED_100
        .call()
        .validate(|v: &u32| if *v < 2 { Err(InvalidOutput::new("too small")) } else { Ok(()) })
        .retry(|| {
            let k = n.fetch_add(1, Ordering::Relaxed);
            async move { Ok(k) }
        })
        .await;
    assert_eq!(out, Ok(2));
    let out: Result<u32, Fail> =
        FIXED_100.call().validate(|_: &u32| Err(InvalidOutput::new("never"))).retry(|| async { Ok(0) }).await;
    assert_eq!(out, Err(Fail::kind(ErrorKind::InvalidOutput)));
}

#[tokio::test(start_paused = true)]
async fn notify_sees_each_retry_in_order_before_the_sleep() {
    let events = RefCell::new(Vec::new());
    let start = Instant::now();
    let out: Result<u32, Fail> = EXP
        .call()
        .notify(|ev: &RetryEvent<'_, Fail>| {
            events.borrow_mut().push((ev.attempt, ev.kind, ev.delay, ev.source, ev.elapsed, start.elapsed()))
        })
        .retry({
            let n = AtomicU32::new(0);
            move || {
                let k = n.fetch_add(1, Ordering::Relaxed);
                async move {
                    match k {
                        0 => Err(Fail::status(500)),
                        1 => Err(Fail::status(429).hint(Duration::from_secs(1))),
                        _ => Ok(k),
                    }
                }
            }
        })
        .await;
    assert_eq!(out, Ok(2));
    let ev = events.into_inner();
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].0, ev[0].1, ev[0].2, ev[0].3), (1, ErrorKind::Server, 100 * MS, DelaySource::Backoff));
    assert_eq!(ev[0].4, Duration::ZERO);
    assert_eq!((ev[1].0, ev[1].1, ev[1].3), (2, ErrorKind::RateLimited, DelaySource::RetryAfter));
    // The hook runs before the sleep: the clock has not moved past the previous sleep.
    assert_eq!(ev[1].5, 100 * MS);
    assert_eq!(ev[1].4, 100 * MS);
}

#[tokio::test(start_paused = true)]
async fn when_replaces_the_retryable_set() {
    let (out, times) = {
        let n = AtomicU32::new(0);
        let out: Result<u32, Fail> = FIXED_100
            .call()
            .when(|e: &Fail| e.status == Some(400))
            .retry(|| {
                let k = n.fetch_add(1, Ordering::Relaxed);
                async move { if k == 0 { Err(Fail::status(400)) } else { Ok(k) } }
            })
            .await;
        (out, n.into_inner())
    };
    assert_eq!((out, times), (Ok(1), 2));
}

#[tokio::test(start_paused = true)]
async fn stats_count_every_outcome() {
    static SITE: Site = Site::new("engine::stats", FIXED_100);
    let _ = run_script(FIXED_100.call().site(&SITE), vec![Ok(1)]).await;
    let _ = run_script(FIXED_100.call().site(&SITE), vec![Err(Fail::status(500)), Ok(1)]).await;
    let _ = run_script(FIXED_100.call().site(&SITE), vec![Err(Fail::status(401))]).await;
    let _ = run_script(FIXED_100.call().site(&SITE), vec![Err(Fail::status(500))]).await;
    let s = SITE.stats();
    assert_eq!(s.calls, 4);
    assert_eq!(s.first_try_successes, 1);
    assert_eq!(s.successes, 2);
    assert_eq!(s.attempts, 1 + 2 + 1 + 5);
    assert_eq!(s.retries, 1 + 4);
    assert_eq!(s.slept, 500 * MS);
    assert_eq!(s.gave_up(GiveUp::NonRetryable), 1);
    assert_eq!(s.gave_up(GiveUp::Exhausted), 1);
    assert_eq!(s.finished(), 4);
    assert_eq!(s.first_try_success_rate(), Some(0.25));
    let snap = llm_retry_runtime::stats();
    assert_eq!(snap.get("engine::stats"), Some(s));
    assert!(snap.to_string().contains("engine::stats"));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_is_counted_as_cancelled_and_not_retried() {
    static SITE: Site = Site::new("engine::cancel", FIXED_100);
    let n = AtomicU32::new(0);
    let fut = FIXED_100.call().site(&SITE).retry(|| {
        n.fetch_add(1, Ordering::Relaxed);
        async { Err::<u32, _>(Fail::status(500)) }
    });
    // Drop it during the first back-off sleep.
    let _ = tokio::time::timeout(50 * MS, fut).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(n.load(Ordering::Relaxed), 1);
    let s = SITE.stats();
    assert_eq!((s.calls, s.cancelled, s.finished()), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_body_propagates_unretried_and_is_counted() {
    static SITE: Site = Site::new("engine::panic", FIXED_100);
    let n = std::sync::Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    let task = tokio::spawn(async move {
        FIXED_100
            .call()
            .site(&SITE)
            .retry(|| {
                n2.fetch_add(1, Ordering::Relaxed);
                async {
                    if true {
                        panic!("boom");
                    }
                    Ok::<u32, Fail>(1)
                }
            })
            .await
    });
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(n.load(Ordering::Relaxed), 1);
    assert_eq!(SITE.stats().panicked, 1);
}

#[test]
fn attempt_counts_saturate() {
    // u32::MAX attempts: the counter and per-kind counts saturate instead of overflowing.
    const HUGE: Policy = policy(Policy::builder().max_attempts(u32::MAX).backoff(Backoff::None));
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let n = AtomicU32::new(0);
    let out: Result<u32, Fail> = rt.block_on(HUGE.call().retry(|| {
        let k = n.fetch_add(1, Ordering::Relaxed);
        async move { if k < 70_000 { Err(Fail::status(500)) } else { Ok(k) } }
    }));
    assert_eq!(out, Ok(70_000));
}

#[test]
fn the_call_future_is_send_when_the_body_is() {
    fn assert_send<F: Send>(_: F) {}
    assert_send(EXP.call::<u32, Fail>().deadline(Duration::from_secs(1)).retry(|| async { Ok(1) }));
    assert_send(EXP.retry(|| async { Ok::<u32, Fail>(1) }));
}

#[tokio::test(start_paused = true)]
async fn the_success_path_draws_no_random_number() {
    // Seeded alike, a run that first makes 100 successful calls must draw the same jitter for
    // its first retry as a run that makes none: a success that touched the RNG would shift it.
    const FULL: Policy = policy(Policy::builder().max_attempts(2).jitter(Jitter::Full));
    let mut first_delays = Vec::new();
    for successes in [0, 100] {
        seed_thread_rng(42);
        for _ in 0..successes {
            assert_eq!(run_script(FULL.call(), vec![Ok(1)]).await.0, Ok(1));
        }
        let (_, times) = run_script(FULL.call(), vec![Err(Fail::status(503)), Ok(1)]).await;
        first_delays.push(times[1]);
    }
    assert_eq!(first_delays[0], first_delays[1]);
    assert!(first_delays[0] > Duration::ZERO);
}

/// Regression: the per-rule counters were `u8` and stopped at 255, so a rule limit of 300 under
/// a policy limit of 1000 made 1000 attempts.
#[tokio::test(start_paused = true)]
async fn a_rule_limit_above_255_is_enforced() {
    const WIDE: Policy = policy(
        Policy::builder()
            .max_attempts(1_000)
            .backoff(Backoff::None)
            .rule(Rule::kind(ErrorKind::RateLimited).max_attempts(300)),
    );
    let (_, times) = run_script(WIDE.call(), vec![Err(Fail::status(429))]).await;
    assert_eq!(times.len(), 300);
}

#[test]
fn a_rule_limit_the_counter_cannot_hold_is_rejected() {
    let rule = |n| Rule::kind(ErrorKind::RateLimited).max_attempts(n);
    let build = |n| Policy::builder().max_attempts(u32::MAX).rule(rule(n)).build();
    assert!(build(llm_retry_runtime::policy::MAX_RULE_ATTEMPTS).is_ok());
    assert_eq!(build(llm_retry_runtime::policy::MAX_RULE_ATTEMPTS + 1).unwrap_err(), Problem::RuleAttemptsTooMany);
}

/// Regression: the deadline check added the random jitter to the server's hint, so a hint of
/// 9.5 s under a 10 s deadline gave up for about half the seeds. A hint inside the deadline is
/// waited for, whatever the jitter.
#[tokio::test(start_paused = true)]
async fn a_retry_after_inside_the_deadline_is_waited_for_whatever_the_jitter() {
    for seed in 0..40 {
        seed_thread_rng(seed);
        let (out, times) = run_script(
            FIXED_100.call().deadline(Duration::from_secs(10)),
            vec![Err(Fail::status(429).hint(9_500 * MS)), Ok(1)],
        )
        .await;
        assert_eq!(out, Ok(1), "seed {seed}");
        assert!(times[1] >= 9_500 * MS && times[1] <= Duration::from_secs(10), "seed {seed}: {times:?}");
    }
}

fn paused<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    rt.block_on(f)
}

/// Which failures the property tests below script: one kind with a rule, one without.
#[derive(Debug, Clone, Copy)]
enum Step {
    Ruled,
    Unruled,
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Attempts end at whichever limit comes first: the policy's, over every failure, or the
    /// rule's, over the failures of its kind. With one kind failing throughout, that is
    /// `min(policy max, rule max)`.
    #[test]
    fn attempts_stop_at_the_first_limit_reached(
        policy_max in 1u32..700,
        rule_raw in 0u32..700,
        steps in proptest::collection::vec(proptest::prop_oneof![proptest::strategy::Just(Step::Ruled), proptest::strategy::Just(Step::Unruled)], 1..40),
    ) {
        // A rule may not allow more than the policy (its limit would never be reached).
        let rule_max = 1 + rule_raw % policy_max;
        let policy = Policy::builder()
            .max_attempts(policy_max)
            .backoff(Backoff::None)
            .rule(Rule::kind(ErrorKind::RateLimited).max_attempts(rule_max))
            .build()
            .unwrap();
        let above = Policy::builder().max_attempts(policy_max).rule(Rule::kind(ErrorKind::RateLimited).max_attempts(policy_max + 1));
        proptest::prop_assert_eq!(above.build().unwrap_err(), Problem::RuleAttemptsAboveMax);
        // The scripted steps, then the ruled kind for ever.
        let fail = |i: usize| match steps.get(i).copied().unwrap_or(Step::Ruled) {
            Step::Ruled => Fail::status(429),
            Step::Unruled => Fail::status(503),
        };
        let mut expected = 0u32;
        let mut ruled = 0u32;
        for i in 0.. {
            expected += 1;
            if matches!(fail(i).kind, ErrorKind::RateLimited) {
                ruled += 1;
                if ruled >= rule_max {
                    break;
                }
            }
            if expected >= policy_max {
                break;
            }
        }
        let (out, times) = paused(run_script(policy.call(), (0..expected as usize + 1).map(|i| Err(fail(i))).collect()));
        proptest::prop_assert!(out.is_err());
        proptest::prop_assert_eq!(times.len() as u32, expected);
        if steps.is_empty() || steps.iter().all(|s| matches!(s, Step::Ruled)) {
            proptest::prop_assert_eq!(expected, policy_max.min(rule_max));
        }
    }

    /// A Retry-After under a deadline: the call gives up exactly when `elapsed + hint` is past
    /// the deadline, and otherwise waits at least the hint and never sleeps past the deadline.
    #[test]
    fn a_hint_is_waited_for_exactly_when_it_lands_inside_the_deadline(
        deadline_ms in 1u64..20_000,
        elapsed_per_mille in 0u64..1_000,
        hint_ms in 1u64..30_000,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let deadline = Duration::from_millis(deadline_ms);
        // Whole milliseconds: tokio's timers tick in milliseconds.
        let elapsed = Duration::from_millis(deadline_ms * elapsed_per_mille / 1_000);
        let hint = Duration::from_millis(hint_ms);
        let (out, times, total) = paused(async move {
            seed_thread_rng(seed);
            let start = Instant::now();
            let n = AtomicU32::new(0);
            let times = RefCell::new(Vec::new());
            let out: Result<u32, Fail> = FIXED_100
                .call()
                .deadline(deadline)
                .retry(|| {
                    times.borrow_mut().push(start.elapsed());
                    let first = n.fetch_add(1, Ordering::Relaxed) == 0;
                    async move {
                        if first {
                            tokio::time::sleep(elapsed).await;
                            Err(Fail::status(429).hint(hint))
                        } else {
                            Ok(2)
                        }
                    }
                })
                .await;
            (out, times.into_inner(), start.elapsed())
        });
        if elapsed + hint > deadline {
            proptest::prop_assert_eq!(out, Err(Fail::status(429).hint(hint)));
            proptest::prop_assert_eq!(times.len(), 1);
            proptest::prop_assert_eq!(total, elapsed, "gave up at once");
        } else {
            proptest::prop_assert_eq!(out, Ok(2));
            proptest::prop_assert!(times[1] >= elapsed + hint, "{:?} waited less than the hint", times);
            proptest::prop_assert!(times[1] <= deadline, "{:?} slept past the deadline", times);
        }
    }
}
