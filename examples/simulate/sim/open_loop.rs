//! Scenario C: outage and partial failure. Open-loop Poisson traffic under `Policy::DEFAULT`
//! (3 retries), with no guard, our [`Budget`], or a model of tower's retry budget.

use super::{model_rng, paused};
use futures::stream::{self, StreamExt};
use llm_retry::{Budget, Classification, Classify, ErrorKind, Policy, RetryExt};
use rand::RngExt;
use rand_distr::{Distribution, Exp};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Duration;
use tokio::time::{Instant, sleep, sleep_until};

/// What stands between a failed attempt and its retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Guard {
    /// Nothing: every call retries up to the policy's limit.
    NoBudget,
    /// Our [`Budget`] with the given ratio and burst (`Budget::new()` is 0.1 and 5).
    Budget {
        /// Retry tokens a success earns.
        ratio: f64,
        /// Retries held in reserve.
        burst: u32,
    },
    /// A comparison model of tower's retry budget (not our product): over a 10 s window,
    /// retries may reach `10/s × 10 s + 20%` of the window's requests.
    Tower,
}

impl Guard {
    /// Our default budget.
    pub const OUR_BUDGET: Guard = Guard::Budget { ratio: 0.1, burst: 5 };

    /// The name in tables and plots.
    pub fn name(self) -> String {
        match self {
            Guard::NoBudget => "no budget".into(),
            Guard::Budget { ratio, burst } if self == Guard::OUR_BUDGET => {
                format!("Budget::new() ({ratio}, burst {burst})")
            }
            Guard::Budget { ratio, burst } => format!("Budget ratio {ratio}, burst {burst}"),
            Guard::Tower => "tower-style (10/s + 20%)".into(),
        }
    }
}

/// The tower-style comparison gate: deposits per request, a per-second reserve, a window.
struct TowerGate {
    requests: RefCell<VecDeque<Instant>>,
    retries: RefCell<VecDeque<Instant>>,
}

impl TowerGate {
    const TTL: Duration = Duration::from_secs(10);
    const MIN_PER_SEC: f64 = 10.0;
    const PERCENT: f64 = 0.2;

    fn prune(q: &mut VecDeque<Instant>, now: Instant) {
        while q.front().is_some_and(|t| now.saturating_duration_since(*t) > TowerGate::TTL) {
            q.pop_front();
        }
    }

    fn deposit(&self) {
        self.requests.borrow_mut().push_back(Instant::now());
    }

    fn withdraw(&self) -> bool {
        let now = Instant::now();
        let (mut req, mut ret) = (self.requests.borrow_mut(), self.retries.borrow_mut());
        TowerGate::prune(&mut req, now);
        TowerGate::prune(&mut ret, now);
        let allowed = TowerGate::MIN_PER_SEC * TowerGate::TTL.as_secs_f64() + TowerGate::PERCENT * req.len() as f64;
        if (ret.len() as f64) < allowed {
            ret.push_back(now);
            true
        } else {
            false
        }
    }
}

/// Which attempts fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Every attempt during the measured window fails; all others succeed.
    Outage,
    /// Each attempt fails independently with this probability.
    Random(f64),
}

/// Open-loop traffic: Poisson arrivals, a healthy warm-up, then the measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// λ: calls per second.
    pub rate: f64,
    /// Healthy traffic before the window (fills the budgets), not measured.
    pub warmup: Duration,
    /// The measured window: calls arriving in it are counted.
    pub window: Duration,
    /// Which attempts fail.
    pub failure: Failure,
}

/// How long an attempt takes, failed or not.
pub const ATTEMPT_LATENCY: Duration = Duration::from_millis(50);

/// The failure every attempt in an outage ends in.
#[derive(Debug)]
pub struct Unavailable;

impl Classify for Unavailable {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Server).with_status(503)
    }
}

/// The totals of the calls that arrived in the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OpenRun {
    /// Calls (first attempts).
    pub calls: u64,
    /// Attempts, retries included.
    pub attempts: u64,
    /// Calls that ended in a success.
    pub succeeded: u64,
}

impl OpenRun {
    /// Attempts ÷ first attempts.
    pub fn amplification(&self) -> f64 {
        self.attempts as f64 / self.calls.max(1) as f64
    }

    /// The share of calls that succeeded.
    pub fn success(&self) -> f64 {
        self.succeeded as f64 / self.calls.max(1) as f64
    }
}

/// One run of open-loop traffic under `Policy::DEFAULT` (4 attempts: at most 3 retries).
pub fn open_run(guard: Guard, load: OpenLoop, seed: u64) -> OpenRun {
    let budget: &'static Budget = match guard {
        Guard::Budget { ratio, burst } => {
            Box::leak(Box::new(Budget::builder().ratio(ratio).burst(burst).build().expect("a valid budget")))
        }
        _ => Box::leak(Box::new(Budget::new())),
    };
    paused(seed, async move {
        let rng = model_rng(seed);
        let start = Instant::now();
        let window = (start + load.warmup, start + load.warmup + load.window);
        let gaps = Exp::new(load.rate).expect("a positive rate");
        let mut at = start;
        let arrivals = std::iter::from_fn(|| {
            at += Duration::from_secs_f64(gaps.sample(&mut *rng.borrow_mut()));
            (at < window.1).then_some(at)
        })
        .collect::<Vec<_>>();
        let tower = TowerGate { requests: RefCell::default(), retries: RefCell::default() };
        let (rng, tower) = (&rng, &tower);
        let fails = move || {
            let now = Instant::now();
            match load.failure {
                Failure::Outage => now >= window.0 && now < window.1,
                Failure::Random(p) => rng.borrow_mut().random::<f64>() < p,
            }
        };
        let call = move |arrival: Instant| async move {
            let attempts = Cell::new(0u64);
            let attempt = || async {
                attempts.set(attempts.get() + 1);
                let failed = fails();
                sleep(ATTEMPT_LATENCY).await;
                if failed { Err(Unavailable) } else { Ok(()) }
            };
            let policy = &Policy::DEFAULT;
            let out = match guard {
                Guard::NoBudget => policy.call().retry(attempt).await,
                Guard::Budget { .. } => policy.call().budget(budget).retry(attempt).await,
                Guard::Tower => {
                    tower.deposit();
                    let mut call = policy.call::<(), Unavailable>();
                    loop {
                        call.start_attempt();
                        let out = attempt().await;
                        match call.settle(out, None) {
                            ControlFlow::Break(out) => break out,
                            ControlFlow::Continue(_) if !tower.withdraw() => break Err(Unavailable),
                            ControlFlow::Continue(plan) => sleep(plan.delay).await,
                        }
                    }
                }
            };
            let counted = arrival >= window.0;
            (counted, attempts.get(), out.is_ok())
        };
        // Each call is created when it arrives, so only the calls in progress are in memory.
        let mut calls = std::pin::pin!(
            stream::iter(arrivals)
                .then(|at| async move {
                    sleep_until(at).await;
                    at
                })
                .map(call)
                .buffer_unordered(usize::MAX)
        );
        let mut run = OpenRun::default();
        while let Some((counted, attempts, ok)) = calls.next().await {
            if counted {
                run.calls += 1;
                run.attempts += attempts;
                run.succeeded += u64::from(ok);
            }
        }
        run
    })
}
