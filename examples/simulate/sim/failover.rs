//! Scenario D: primary outage. Open-loop Poisson traffic through a fallback chain `[primary,
//! backup]` under `Policy::DEFAULT` (4 attempts per target); the primary fails every attempt
//! for 60 s, then recovers. With a [`Breaker`] (the defaults: 5 failures in a row, 30 s
//! cooldown) on the primary, or without one.

use super::{model_rng, paused, quantile};
use futures::stream::{self, StreamExt};
use llm_retry::failover::{Breaker, BreakerState, CircuitOpen, Fallback, Target};
use llm_retry::{Classification, Classify, ErrorKind, Policy, RetryExt};
use rand_distr::{Distribution, Exp};
use std::cell::Cell;
use std::time::Duration;
use tokio::time::{Instant, sleep, sleep_until};

/// λ: calls per second.
pub const FAILOVER_RATE: f64 = 10.0;
/// Healthy traffic before the outage, and after the recovery.
pub const FAILOVER_CALM: Duration = Duration::from_secs(60);
/// How long the primary is down.
pub const FAILOVER_OUTAGE: Duration = Duration::from_secs(60);
/// How long an attempt takes, on either target, failed or not.
pub const FAILOVER_LATENCY: Duration = Duration::from_millis(50);

/// The primary's failure during the outage, or a call that no breaker let through.
#[derive(Debug)]
pub struct Down;

impl Classify for Down {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Server).with_status(503)
    }
}

impl From<CircuitOpen> for Down {
    fn from(_: CircuitOpen) -> Down {
        Down
    }
}

/// What the calls of one run saw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FailoverRun {
    /// Calls, in the whole run.
    pub calls: u64,
    /// Calls that succeeded.
    pub succeeded: u64,
    /// Successful answers, on both targets: one per call when no call is served twice.
    pub answers: u64,
    /// Added latency (the call's time less the 50 ms of the attempt that served it), in
    /// milliseconds, of the calls that arrived during the outage: median, 99th percentile, most.
    pub added_p50_ms: f64,
    /// See `added_p50_ms`.
    pub added_p99_ms: f64,
    /// See `added_p50_ms`.
    pub added_max_ms: f64,
    /// Calls that arrived during the outage once the breaker had opened, and the most added
    /// latency any of them paid apart from the probes.
    pub after_open: u64,
    /// See `after_open`.
    pub after_open_max_added_ms: f64,
    /// Attempts sent to the primary while its breaker was not closed: the probes, and nothing else.
    pub primary_while_open: u64,
    /// The breaker's probes, and the most in flight at once.
    pub probes: u64,
    /// See `probes`.
    pub most_probes_at_once: u64,
    /// From the recovery to the first arrival after which every call was served by the primary.
    pub back_after: Duration,
}

impl FailoverRun {
    /// The share of calls that succeeded.
    pub fn success(&self) -> f64 {
        self.succeeded as f64 / self.calls.max(1) as f64
    }
}

/// One run: `breaker` says whether the primary has one.
pub fn failover_run(breaker: bool, seed: u64) -> FailoverRun {
    // Statics for this run alone (the runs of a scenario go in parallel).
    let b: &'static Breaker = Box::leak(Box::new(Breaker::new("sim.primary")));
    let primary = Target::new("primary");
    let primary: &'static Target = Box::leak(Box::new(if breaker { primary.breaker(b) } else { primary }));
    let backup: &'static Target = Box::leak(Box::new(Target::new("backup")));
    let targets: &'static [&'static Target] = Box::leak(Box::new([primary, backup]));
    let chain = Fallback::new(targets).expect("two targets");
    paused(seed, async move {
        let rng = model_rng(seed);
        let start = Instant::now();
        let (down, up) = (start + FAILOVER_CALM, start + FAILOVER_CALM + FAILOVER_OUTAGE);
        let end = up + FAILOVER_CALM;
        let gaps = Exp::new(FAILOVER_RATE).expect("a positive rate");
        let mut at = start;
        let arrivals = std::iter::from_fn(|| {
            at += Duration::from_secs_f64(gaps.sample(&mut *rng.borrow_mut()));
            (at < end).then_some(at)
        })
        .collect::<Vec<_>>();
        let opened_at: Cell<Option<Instant>> = Cell::new(None);
        let (answers, while_open, probes, most) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
        let shared = (&opened_at, &answers, &while_open, &probes, &most);
        let call = move |arrival: Instant| async move {
            let (opened_at, answers, while_open, probes, most) = shared;
            let attempt = |t: &'static Target| async move {
                let is_primary = core::ptr::eq(t, primary);
                let probe = is_primary && breaker && b.state() != BreakerState::Closed;
                if probe {
                    while_open.set(while_open.get() + 1);
                    probes.set(probes.get() + 1);
                    most.set(most.get().max(probes.get()));
                }
                let now = Instant::now();
                let failed = is_primary && now >= down && now < up;
                sleep(FAILOVER_LATENCY).await;
                if probe {
                    probes.set(probes.get() - 1);
                }
                if breaker && opened_at.get().is_none() && b.state() == BreakerState::Open {
                    opened_at.set(Some(Instant::now()));
                }
                if failed {
                    Err(Down)
                } else {
                    answers.set(answers.get() + 1);
                    Ok(is_primary)
                }
            };
            let out = Policy::DEFAULT.call().fallback(chain).retry(attempt).await;
            (arrival, arrival.elapsed(), out)
        };
        let mut calls = std::pin::pin!(
            stream::iter(arrivals)
                .then(|at| async move {
                    sleep_until(at).await;
                    at
                })
                .map(call)
                .buffer_unordered(usize::MAX)
        );
        let mut run = FailoverRun::default();
        let mut back: Option<Instant> = None;
        let mut served = Vec::new();
        let mut added_ms = Vec::new();
        while let Some((arrival, took, out)) = calls.next().await {
            run.calls += 1;
            run.succeeded += u64::from(out.is_ok());
            let added = took.saturating_sub(FAILOVER_LATENCY).as_secs_f64() * 1000.0;
            if arrival >= down && arrival < up {
                added_ms.push(added);
            }
            served.push((arrival, added, matches!(out, Ok(true))));
        }
        served.sort_by_key(|s| s.0);
        for &(arrival, added, by_primary) in &served {
            if arrival >= up && by_primary && back.is_none() {
                back = Some(arrival);
            } else if arrival >= up && !by_primary {
                back = None;
            }
            if let Some(open) = opened_at.get()
                && arrival >= open
                && arrival < up
            {
                run.after_open += 1;
                // A probe's call pays the failed probe's 50 ms; the others pay nothing.
                if added < FAILOVER_LATENCY.as_secs_f64() * 1000.0 {
                    run.after_open_max_added_ms = run.after_open_max_added_ms.max(added);
                }
            }
        }
        run.added_p50_ms = quantile(&mut added_ms, 0.5);
        run.added_p99_ms = quantile(&mut added_ms, 0.99);
        run.added_max_ms = quantile(&mut added_ms, 1.0);
        run.answers = answers.get();
        run.primary_while_open = while_open.get();
        run.probes = b.stats().probes;
        run.most_probes_at_once = most.get();
        run.back_after = back.map_or(Duration::MAX, |b| b.saturating_duration_since(up));
        run
    })
}
