//! Circuit breakers and fallback chains, in paused time.
//!
//! - Move-on per kind: a context-length error moves to the large model with zero added delay;
//!   quota moves on; Auth and BadRequest stop unless listed; retryable kinds move on once the
//!   policy's attempts on the target are spent.
//! - The breaker: opens on consecutive failures and on a failure rate, at once for a long
//!   Retry-After on a 429 or 529, never on the caller's errors; an open breaker skips its
//!   target at once; half-open lets exactly one probe through; a dropped probe is released;
//!   no target left ends the call with "circuit open".
//! - The outage: the primary down for 60 s at 10 calls/s. Every call succeeds; once the breaker
//!   is open a call costs no more than the fallback's own latency; the traffic returns to the
//!   primary within one cooldown of its recovery; exactly one probe at a time; no call lost or
//!   served twice. Prints p50/p99 with and without a breaker (docs/FAILOVER.md):
//!   `cargo test -p llm-retry-runtime --all-features --test it -- --nocapture failover::outage`

use core::ops::ControlFlow;
use llm_retry_runtime::failover::{
    Breaker, BreakerError, BreakerState, CircuitOpen, FailoverError, Fallback, Route, Target,
};
use llm_retry_runtime::http::RetryAfter;
use llm_retry_runtime::{ApiError, ErrorKind, GiveUp, Policy, RetryExt, rng::seed_thread_rng, stats::Site};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::time::Instant;

const POLICY: Policy = match Policy::builder().max_attempts(3).build() {
    Ok(p) => p,
    Err(_) => panic!(),
};

const fn breaker(name: &'static str, consecutive: u32) -> Breaker {
    match Breaker::builder(name).consecutive_failures(consecutive).cooldown(Duration::from_secs(30)).build() {
        Ok(b) => b,
        Err(_) => panic!(),
    }
}

const fn chain(targets: &'static [&'static Target]) -> Fallback<'static> {
    match Fallback::new(targets) {
        Ok(c) => c,
        Err(_) => panic!(),
    }
}

/// Counts the attempts each target's body saw.
#[derive(Default)]
struct Seen {
    first: AtomicU64,
    second: AtomicU64,
}

impl Seen {
    fn saw(&self, t: &Target, first: &Target) {
        if core::ptr::eq(t, first) { &self.first } else { &self.second }.fetch_add(1, Relaxed);
    }
    fn counts(&self) -> (u64, u64) {
        (self.first.load(Relaxed), self.second.load(Relaxed))
    }
}

#[tokio::test(start_paused = true)]
async fn a_context_length_error_on_the_small_model_is_served_by_the_large_one_with_zero_added_delay() {
    static SMALL: Target = Target::new("small");
    static LARGE: Target = Target::new("large");
    static CHAIN: Fallback<'static> = chain(&[&SMALL, &LARGE]);
    let seen = Seen::default();
    let start = Instant::now();
    let out: Result<&str, ApiError> = POLICY
        .call()
        .fallback(CHAIN)
        .retry(|t| {
            seen.saw(t, &SMALL);
            async move {
                if core::ptr::eq(t, &SMALL) {
                    Err(ApiError::new(ErrorKind::ContextLengthExceeded, "maximum context length is 8192 tokens"))
                } else {
                    Ok(t.name())
                }
            }
        })
        .await;
    assert_eq!(out.unwrap(), "large");
    assert_eq!(start.elapsed(), Duration::ZERO, "no back-off before the large model");
    assert_eq!(seen.counts(), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn quota_exhausted_moves_on_at_once() {
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static CHAIN: Fallback<'static> = chain(&[&A, &B]);
    let seen = Seen::default();
    let start = Instant::now();
    let out: Result<&str, ApiError> = POLICY
        .call()
        .fallback(CHAIN)
        .retry(|t| {
            seen.saw(t, &A);
            async move { if core::ptr::eq(t, &A) { Err(ApiError::from_status(402)) } else { Ok(t.name()) } }
        })
        .await;
    assert_eq!(out.unwrap(), "b");
    assert_eq!((seen.counts(), start.elapsed()), ((1, 1), Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn auth_and_bad_request_stop_unless_listed() {
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static TARGETS: [&Target; 2] = [&A, &B];
    for (status, kind) in [(401, ErrorKind::Auth), (400, ErrorKind::BadRequest)] {
        let seen = Seen::default();
        let body = |t: &'static Target| {
            seen.saw(t, &A);
            async move { if core::ptr::eq(t, &A) { Err(ApiError::from_status(status)) } else { Ok(t.name()) } }
        };
        let out: Result<&str, ApiError> = POLICY.call().fallback(Fallback::new(&TARGETS).unwrap()).retry(body).await;
        assert_eq!(out.unwrap_err().kind(), kind);
        assert_eq!(seen.counts(), (1, 0), "{kind}: stops");

        let listed = Fallback::new(&TARGETS).unwrap().move_on(kind);
        let out: Result<&str, ApiError> = POLICY.call().fallback(listed).retry(body).await;
        assert_eq!(out.unwrap(), "b", "{kind}: listed, moves on");
        assert_eq!(seen.counts(), (2, 1));
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_kinds_move_on_once_the_policys_attempts_on_the_target_are_spent() {
    static SITE: Site = Site::new("failover::per_target", POLICY);
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static CHAIN: Fallback<'static> = chain(&[&A, &B]);
    for status in [429, 529, 500, 503] {
        let seen = Seen::default();
        let out: Result<u16, ApiError> =
            POLICY
                .call()
                .site(&SITE)
                .fallback(CHAIN)
                .retry(|t| {
                    seen.saw(t, &A);
                    // The fallback fails twice too: the policy's 3 attempts apply per target.
                    let n = seen.counts().1;
                    async move {
                        if core::ptr::eq(t, &A) || n < 3 { Err(ApiError::from_status(status)) } else { Ok(status) }
                    }
                })
                .await;
        assert_eq!(out.unwrap(), status);
        assert_eq!(seen.counts(), (3, 3), "{status}");
    }
    let s = SITE.stats();
    assert_eq!((s.calls, s.successes, s.attempts), (4, 4, 24));
}

#[tokio::test(start_paused = true)]
async fn the_last_target_exhausted_gives_up_as_usual() {
    static SITE: Site = Site::new("failover::last", POLICY);
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static CHAIN: Fallback<'static> = chain(&[&A, &B]);
    let out: Result<(), ApiError> =
        POLICY.call().site(&SITE).fallback(CHAIN).retry(|_| async { Err(ApiError::from_status(503)) }).await;
    assert_eq!(out.unwrap_err().status(), Some(503));
    assert_eq!(SITE.stats().gave_up(GiveUp::Exhausted), 1);
    assert_eq!(SITE.stats().attempts, 6);
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_open_the_breaker_and_an_open_breaker_is_skipped_at_once() {
    static B1: Breaker = breaker("primary", 3);
    static PRIMARY: Target = Target::new("primary").breaker(&B1);
    static BACKUP: Target = Target::new("backup");
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &BACKUP]);
    let seen = Seen::default();
    let call = || {
        POLICY.call::<&str, ApiError>().fallback(CHAIN).retry(|t| {
            seen.saw(t, &PRIMARY);
            async move { if core::ptr::eq(t, &PRIMARY) { Err(ApiError::from_status(503)) } else { Ok(t.name()) } }
        })
    };
    // The first call spends its 3 attempts on the primary: the third failure opens it.
    assert_eq!(call().await.unwrap(), "backup");
    assert_eq!(seen.counts(), (3, 1));
    assert_eq!(B1.state(), BreakerState::Open);
    // Once open, a call goes straight to the backup: no attempt, no delay.
    let start = Instant::now();
    assert_eq!(call().await.unwrap(), "backup");
    assert_eq!((seen.counts(), start.elapsed()), ((3, 2), Duration::ZERO));
    assert_eq!(B1.stats().refused, 1);
    assert_eq!(B1.stats().opened, 1);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_that_opens_mid_call_moves_on_without_the_remaining_retries() {
    static B2: Breaker = breaker("primary", 2);
    static PRIMARY: Target = Target::new("primary").breaker(&B2);
    static BACKUP: Target = Target::new("backup");
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &BACKUP]);
    let seen = Seen::default();
    let out: Result<&str, ApiError> = POLICY
        .call()
        .fallback(CHAIN)
        .retry(|t| {
            seen.saw(t, &PRIMARY);
            async move { if core::ptr::eq(t, &PRIMARY) { Err(ApiError::from_status(502)) } else { Ok(t.name()) } }
        })
        .await;
    assert_eq!(out.unwrap(), "backup");
    assert_eq!(seen.counts(), (2, 1), "the breaker opened on the 2nd failure; the 3rd attempt went to the backup");
}

#[tokio::test(start_paused = true)]
async fn the_failure_rate_opens_the_breaker() {
    static B3: Breaker =
        match Breaker::builder("rate").consecutive_failures(100).failure_rate(0.5).min_calls(10).build() {
            Ok(b) => b,
            Err(_) => panic!(),
        };
    static T: Target = Target::new("rate").breaker(&B3);
    static CHAIN: Fallback<'static> = chain(&[&T]);
    let once = Policy::builder().max_attempts(1).build().unwrap();
    // Failures and successes alternate, never two failures in a row: the window opens at the
    // first failure, and the breaker at the first failure after 10 attempts, at 6 of 11.
    for i in 0..14u32 {
        let _: Result<u32, ApiError> = once
            .call()
            .fallback(CHAIN)
            .retry(|_| async move { if i % 2 == 0 { Err(ApiError::from_status(500)) } else { Ok(i) } })
            .await;
        assert_eq!(B3.state() == BreakerState::Open, i >= 10, "call {i}");
    }
    assert_eq!(B3.stats().opened, 1);
    assert_eq!(B3.stats().refused, 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_whose_retry_after_is_over_the_cap_opens_the_breaker_for_the_hinted_time() {
    static B4: Breaker = breaker("limited", 5);
    static PRIMARY: Target = Target::new("limited").breaker(&B4);
    static BACKUP: Target = Target::new("backup");
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &BACKUP]);
    let hint = Duration::from_secs(600); // over the policy's 120 s cap
    let start = Instant::now();
    let out: Result<&str, ApiError> = POLICY
        .call()
        .fallback(CHAIN)
        .retry(|t| async move {
            if core::ptr::eq(t, &PRIMARY) {
                Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(hint)))
            } else {
                Ok(t.name())
            }
        })
        .await;
    assert_eq!(out.unwrap(), "backup");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(B4.state(), BreakerState::Open);
    assert_eq!(B4.open_until(), Some(start + hint));
}

#[tokio::test(start_paused = true)]
async fn the_callers_errors_never_open_the_breaker() {
    static B5: Breaker = breaker("callers", 1);
    static T: Target = Target::new("callers").breaker(&B5);
    static CHAIN: Fallback<'static> = chain(&[&T]);
    for kind in [ErrorKind::Auth, ErrorKind::BadRequest, ErrorKind::ContextLengthExceeded, ErrorKind::ContentFiltered] {
        for _ in 0..10 {
            let out: Result<(), ApiError> =
                POLICY.call().fallback(CHAIN).retry(|_| async move { Err(ApiError::new(kind, "no")) }).await;
            assert_eq!(out.unwrap_err().kind(), kind);
        }
    }
    assert_eq!(B5.state(), BreakerState::Closed);
    assert_eq!(B5.stats().opened, 0);
}

#[tokio::test(start_paused = true)]
async fn no_target_left_ends_the_call_with_circuit_open() {
    static SITE: Site = Site::new("failover::circuit_open", POLICY);
    static B6: Breaker = breaker("down", 1);
    static T: Target = Target::new("down").breaker(&B6);
    static CHAIN: Fallback<'static> = chain(&[&T]);
    let calls = AtomicU32::new(0);
    let body = |_| {
        calls.fetch_add(1, Relaxed);
        async { Err::<(), _>(ApiError::from_status(503)) }
    };
    let first = POLICY.call().site(&SITE).fallback(CHAIN).retry(body).await;
    assert_eq!(first.unwrap_err().status(), Some(503));
    assert_eq!(SITE.stats().gave_up(GiveUp::Exhausted), 0, "the breaker opened: no target left");
    assert_eq!(SITE.stats().gave_up(GiveUp::CircuitOpen), 1);
    tokio::time::advance(Duration::from_secs(10)).await;
    let start = Instant::now();
    let second: Result<(), std::io::Error> =
        POLICY.call().site(&SITE).fallback(CHAIN).retry(|_| async { Ok(()) }).await;
    let e = second.unwrap_err();
    assert_eq!(e.to_string(), "circuit open for `down`, until 20.0 s from now");
    let open = e.get_ref().and_then(|e| e.downcast_ref::<CircuitOpen>()).copied().unwrap();
    assert_eq!(open.retry_in(), Some(Duration::from_secs(20)));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(calls.load(Relaxed), 1);
    assert_eq!(SITE.stats().gave_up(GiveUp::CircuitOpen), 2);
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_one_probe_through_and_its_success_closes_the_breaker() {
    static B7: Breaker = breaker("probe", 1);
    static PRIMARY: Target = Target::new("probe").breaker(&B7);
    static BACKUP: Target = Target::new("backup");
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &BACKUP]);
    let _: Result<(), ApiError> =
        POLICY.call().fallback(CHAIN).retry(|_| async { Err(ApiError::from_status(503)) }).await;
    assert_eq!(B7.state(), BreakerState::Open);
    tokio::time::advance(B7.cooldown()).await;

    // Ten concurrent calls; the primary takes 1 s to answer.
    let in_flight = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            POLICY
                .call::<String, ApiError>()
                .fallback(CHAIN)
                .retry(move |t: &'static Target| {
                    let (in_flight, most) = (in_flight.clone(), most.clone());
                    async move {
                        if core::ptr::eq(t, &PRIMARY) {
                            most.fetch_max(in_flight.fetch_add(1, Relaxed) + 1, Relaxed);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            in_flight.fetch_sub(1, Relaxed);
                        }
                        Ok(t.name().to_owned())
                    }
                })
                .await
        }));
    }
    let mut served = Vec::new();
    for t in tasks {
        served.push(t.await.unwrap().unwrap());
    }
    assert_eq!(most.load(Relaxed), 1, "one probe at a time");
    assert_eq!(served.iter().filter(|s| **s == "probe").count(), 1);
    assert_eq!(served.iter().filter(|s| **s == "backup").count(), 9);
    assert_eq!(B7.state(), BreakerState::Closed);
    let st = B7.stats();
    assert_eq!((st.opened, st.half_opened, st.closed, st.probes), (1, 1, 1, 1));
    let out: Result<&str, ApiError> = POLICY.call().fallback(CHAIN).retry(|t| async move { Ok(t.name()) }).await;
    assert_eq!(out.unwrap(), "probe", "closed again: traffic is back on the primary");
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_the_breaker_for_another_cooldown() {
    static B8: Breaker = breaker("reprobe", 1);
    static T: Target = Target::new("reprobe").breaker(&B8);
    static CHAIN: Fallback<'static> = chain(&[&T]);
    let fail = |_| async { Err::<(), _>(ApiError::from_status(503)) };
    let _ = POLICY.call().fallback(CHAIN).retry(fail).await;
    tokio::time::advance(B8.cooldown()).await;
    let at = Instant::now();
    let _ = POLICY.call().fallback(CHAIN).retry(fail).await;
    assert_eq!(B8.state(), BreakerState::Open);
    assert_eq!(B8.open_until(), Some(at + B8.cooldown()));
    assert_eq!(B8.stats().opened, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_is_released_for_the_next_call() {
    static B9: Breaker = breaker("dropped", 1);
    static T: Target = Target::new("dropped").breaker(&B9);
    static CHAIN: Fallback<'static> = chain(&[&T]);
    let _: Result<(), ApiError> =
        POLICY.call().fallback(CHAIN).retry(|_| async { Err(ApiError::from_status(503)) }).await;
    tokio::time::advance(B9.cooldown()).await;
    // The probe hangs, and its call is cancelled by a timeout around it.
    let hung = POLICY.call::<(), ApiError>().fallback(CHAIN).retry(|_| std::future::pending());
    assert!(tokio::time::timeout(Duration::from_secs(1), hung).await.is_err());
    let out: Result<u8, ApiError> = POLICY.call().fallback(CHAIN).retry(|_| async { Ok(1) }).await;
    assert_eq!(out.unwrap(), 1, "the next call took the released probe");
    assert_eq!(B9.state(), BreakerState::Closed);
    assert_eq!(B9.stats().probes, 2);
}

#[tokio::test(start_paused = true)]
async fn the_hidden_loop_asks_for_a_target_before_each_attempt_and_settles_with_it() {
    static SITE: Site = Site::new("failover::hidden", POLICY);
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static CHAIN: Fallback<'static> = chain(&[&A, &B]);
    let mut call = llm_retry_runtime::call::Call::<&str, ApiError>::new(&SITE);
    let mut route = Route::new(CHAIN);
    let mut asked = Vec::new();
    let start = Instant::now();
    let out = loop {
        let target = match call.next_target(&mut route) {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        asked.push(target.name());
        let result = if target.name() == "a" { Err(ApiError::from_status(503)) } else { Ok(target.name()) };
        match call.settle_target(&mut route, result) {
            ControlFlow::Break(r) => break r,
            ControlFlow::Continue(pause) => pause.await,
        }
    };
    assert_eq!(out.unwrap(), "b");
    assert_eq!(asked, ["a", "a", "a", "b"]);
    assert!(start.elapsed() > Duration::ZERO, "two back-offs on a");
    let s = SITE.stats();
    assert_eq!((s.calls, s.attempts, s.successes, s.retries), (1, 4, 1, 2));
}

#[test]
fn an_empty_target_list_is_an_error() {
    let built_at_run_time: Vec<&'static Target> = Vec::new();
    assert_eq!(Fallback::new(&built_at_run_time).unwrap_err(), FailoverError::NoTargets);
}

#[test]
fn zero_negative_or_nan_settings_are_rejected_with_the_fields_name() {
    let b = || Breaker::builder("x");
    let cases = [
        (b().consecutive_failures(0).build(), "consecutive_failures"),
        (b().failure_rate(0.0).build(), "failure_rate"),
        (b().failure_rate(-0.1).build(), "failure_rate"),
        (b().failure_rate(f64::NAN).build(), "failure_rate"),
        (b().failure_rate(1.5).build(), "failure_rate"),
        (b().min_calls(0).build(), "min_calls"),
        (b().window(Duration::ZERO).build(), "window"),
        (b().window(Duration::from_secs(100_000)).build(), "window"),
        (b().cooldown(Duration::ZERO).build(), "cooldown"),
        (b().max_cooldown(Duration::from_secs(1)).build(), "max_cooldown"),
        (b().max_cooldown(Duration::MAX).build(), "max_cooldown"),
    ];
    for (result, field) in cases {
        let e: BreakerError = result.unwrap_err();
        assert_eq!(e.field(), field);
        assert!(e.to_string().starts_with(field), "{e}");
    }
    assert!(b().failure_rate(1.0).min_calls(1).build().is_ok());
}

/// One call of the outage run.
#[derive(Debug, Clone, Copy)]
struct Served {
    /// When the call started, from the run's start.
    at: Duration,
    latency: Duration,
    by_primary: bool,
}

const RATE_EVERY: Duration = Duration::from_millis(100); // 10 calls/s
const SERVICE: Duration = Duration::from_millis(50);
const DOWN_FROM: Duration = Duration::from_secs(10);
const DOWN_UNTIL: Duration = Duration::from_secs(70);
const RUN: Duration = Duration::from_secs(150);

/// Calls at 10/s for 150 s through `[primary, backup]`; the primary answers 503 (after
/// the same 50 ms as a success) from 10 s to 70 s. Returns every call's record and the
/// most probes of the primary's breaker that were ever in flight at once.
async fn outage_run(chain: Fallback<'static>, primary: &'static Target) -> (Vec<Served>, u32) {
    let t0 = Instant::now();
    let probes = Arc::new(AtomicU32::new(0));
    let most_probes = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    while t0.elapsed() < RUN {
        let (probes, most_probes) = (probes.clone(), most_probes.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let served: Result<bool, ApiError> = Policy::DEFAULT
                .call()
                .fallback(chain)
                .retry(move |t: &'static Target| {
                    let (probes, most_probes) = (probes.clone(), most_probes.clone());
                    async move {
                        let is_primary = core::ptr::eq(t, primary);
                        let probe =
                            is_primary && t.circuit_breaker().is_some_and(|b| b.state() == BreakerState::HalfOpen);
                        if probe {
                            most_probes.fetch_max(probes.fetch_add(1, Relaxed) + 1, Relaxed);
                        }
                        let down = (DOWN_FROM..DOWN_UNTIL).contains(&t0.elapsed());
                        tokio::time::sleep(SERVICE).await;
                        if probe {
                            probes.fetch_sub(1, Relaxed);
                        }
                        if is_primary && down { Err(ApiError::from_status(503)) } else { Ok(is_primary) }
                    }
                })
                .await;
            Served { at: start - t0, latency: start.elapsed(), by_primary: served.expect("every call succeeds") }
        }));
        tokio::time::sleep(RATE_EVERY).await;
    }
    let mut served = Vec::with_capacity(tasks.len());
    for t in tasks {
        served.push(t.await.expect("no call panics"));
    }
    (served, most_probes.load(Relaxed))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn during_outage(served: &[Served]) -> Vec<Duration> {
    let mut l: Vec<Duration> =
        served.iter().filter(|s| (DOWN_FROM..DOWN_UNTIL).contains(&s.at)).map(|s| s.latency).collect();
    l.sort();
    l
}

#[tokio::test(start_paused = true)]
async fn outage_of_the_primary_for_60_s_at_10_calls_a_second() {
    static PRIMARY_BREAKER: Breaker = Breaker::new("outage-primary");
    static PRIMARY: Target = Target::new("outage-primary").breaker(&PRIMARY_BREAKER);
    static BACKUP: Target = Target::new("outage-backup");
    static CHAIN: Fallback<'static> = chain(&[&PRIMARY, &BACKUP]);
    static BARE_PRIMARY: Target = Target::new("bare-primary");
    static BARE_CHAIN: Fallback<'static> = chain(&[&BARE_PRIMARY, &BACKUP]);

    seed_thread_rng(17);
    let (with, most_probes) = outage_run(CHAIN, &PRIMARY).await;
    let (without, _) = outage_run(BARE_CHAIN, &BARE_PRIMARY).await;

    // 100% of the calls succeed, each exactly once (a task returns one result).
    assert_eq!(with.len(), (RUN.as_millis() / RATE_EVERY.as_millis()) as usize);
    assert_eq!(without.len(), with.len());

    // Once the breaker is open, a call costs the backup's own 50 ms and nothing more, except
    // the probes (a failed probe adds the primary's 50 ms).
    let cooldown = PRIMARY_BREAKER.cooldown();
    let open = DOWN_FROM + Duration::from_secs(1);
    let after_open: Vec<&Served> = with.iter().filter(|s| (open..DOWN_UNTIL).contains(&s.at)).collect();
    let slow: Vec<&&Served> = after_open.iter().filter(|s| s.latency > SERVICE + Duration::from_millis(1)).collect();
    assert!(slow.len() <= (DOWN_UNTIL - open).as_secs() as usize / cooldown.as_secs() as usize + 1, "{slow:?}");
    assert!(slow.iter().all(|s| s.latency <= 2 * SERVICE + Duration::from_millis(1)), "{slow:?}");
    assert!(after_open.iter().all(|s| !s.by_primary));

    // After the recovery: one probe at a time, and every call started a cooldown after the
    // recovery is served by the primary again.
    assert_eq!(most_probes, 1);
    let back = DOWN_UNTIL + cooldown + SERVICE;
    assert!(with.iter().filter(|s| s.at >= back).all(|s| s.by_primary));
    assert_eq!(PRIMARY_BREAKER.state(), BreakerState::Closed);
    let st = PRIMARY_BREAKER.stats();
    assert_eq!(st.closed, 1, "{st:?}");
    assert_eq!(st.opened, st.probes, "each probe but the last failed and reopened it: {st:?}");

    // Without a breaker every call of the outage first spends its retry schedule on the primary.
    let (w, wo) = (during_outage(&with), during_outage(&without));
    let (w50, w99, wo50, wo99) =
        (percentile(&w, 0.5), percentile(&w, 0.99), percentile(&wo, 0.5), percentile(&wo, 0.99));
    println!("primary down 60 s at 10 calls/s, {} calls in the outage, service 50 ms:", w.len());
    let (wmax, womax) = (w[w.len() - 1], wo[wo.len() - 1]);
    println!(
        "  with a breaker:    p50 {w50:?}  p99 {w99:?}  max {wmax:?}  (opened {} times, {} probes)",
        st.opened, st.probes
    );
    println!("  without a breaker: p50 {wo50:?}  p99 {wo99:?}  max {womax:?}");
    assert_eq!(w50, SERVICE);
    assert!(wo50 > 4 * SERVICE, "4 attempts on the primary, then the backup: {wo50:?}");
    assert!(wo.iter().all(|l| *l > 4 * SERVICE));
    // (A call started in the last seconds of the outage may be served by the recovered primary.)
    let early = DOWN_FROM..DOWN_UNTIL - Duration::from_secs(5);
    assert!(without.iter().filter(|s| early.contains(&s.at)).all(|s| !s.by_primary));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_call_on_any_target() {
    static SITE: Site = Site::new("failover::deadline", POLICY);
    static A: Target = Target::new("a");
    static B: Target = Target::new("b");
    static CHAIN: Fallback<'static> = chain(&[&A, &B]);
    let seen = Seen::default();
    let start = Instant::now();
    let out: Result<(), ApiError> = POLICY
        .call()
        .site(&SITE)
        .deadline(Duration::from_secs(1))
        .fallback(CHAIN)
        .retry(|t| {
            seen.saw(t, &A);
            std::future::pending()
        })
        .await;
    assert_eq!(out.unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(seen.counts(), (1, 0), "no move on past the deadline");
    assert_eq!(SITE.stats().gave_up(GiveUp::Deadline), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeouts_count_against_the_breaker() {
    static B10: Breaker = breaker("hangs", 2);
    static HANGS: Target = Target::new("hangs").breaker(&B10);
    static BACKUP: Target = Target::new("backup");
    static CHAIN: Fallback<'static> = chain(&[&HANGS, &BACKUP]);
    let seen = Seen::default();
    let out: Result<&str, ApiError> = POLICY
        .call()
        .attempt_timeout(Duration::from_secs(1))
        .fallback(CHAIN)
        .retry(|t| {
            seen.saw(t, &HANGS);
            async move {
                if core::ptr::eq(t, &HANGS) {
                    std::future::pending::<()>().await;
                }
                Ok(t.name())
            }
        })
        .await;
    assert_eq!(out.unwrap(), "backup");
    assert_eq!(seen.counts(), (2, 1), "two timeouts opened the breaker");
    assert_eq!(B10.state(), BreakerState::Open);
}
