//! Scenario A: the AWS "Exponential Backoff And Jitter" experiment, optimistic concurrency on
//! one row, each backoff strategy of the post a real [`Policy`].

use super::{build, model_rng, paused};
use futures::stream::{FuturesUnordered, StreamExt};
use llm_retry::{Backoff, Classification, Classify, ErrorKind, Jitter, Policy, RetryExt, RetryOn};
use rand_distr::{Distribution, Normal};
use std::cell::Cell;
use std::time::Duration;
use tokio::time::{Instant, sleep};

/// tokio's timer wheel has a resolution of 1 ms, and the OCC model's events are a few
/// milliseconds apart, so ties (a read and a write in the same tick) would decide the
/// contention. Scenario A therefore runs on a stretched clock: one model millisecond is
/// `OCC_SCALE` tokio milliseconds. The backoff parameters are stretched by the same factor;
/// every formula involved (exponential, full, equal, decorrelated) is linear in its durations,
/// so the delays are exactly the model's, and ticks become microseconds of model time.
pub const OCC_SCALE: f64 = 1000.0;

/// A model duration in milliseconds, on the stretched clock.
fn occ_ms(ms: f64) -> Duration {
    Duration::from_secs_f64(ms * OCC_SCALE / 1000.0)
}

/// The backoff strategies of the AWS post, each one a real [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccStrategy {
    /// Retry at once.
    None,
    /// Exponential, no jitter.
    Exponential,
    /// Exponential with full jitter.
    Full,
    /// Exponential with equal jitter.
    Equal,
    /// Decorrelated jitter.
    Decorrelated,
}

impl OccStrategy {
    /// Every strategy, in the post's order.
    pub const ALL: [OccStrategy; 5] =
        [OccStrategy::None, OccStrategy::Exponential, OccStrategy::Equal, OccStrategy::Full, OccStrategy::Decorrelated];

    /// The name in tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            OccStrategy::None => "no backoff",
            OccStrategy::Exponential => "exponential",
            OccStrategy::Equal => "equal jitter",
            OccStrategy::Full => "full jitter",
            OccStrategy::Decorrelated => "decorrelated",
        }
    }

    /// The published simulator's result at N = 100, rerun: (mean ms, mean writes).
    pub fn aws_reference(self) -> (f64, f64) {
        match self {
            OccStrategy::None => (2029.0, 2424.0),
            OccStrategy::Exponential => (63227.0, 1851.0),
            OccStrategy::Equal => (6575.0, 813.0),
            OccStrategy::Full => (4902.0, 796.0),
            OccStrategy::Decorrelated => (4680.0, 1000.0),
        }
    }

    /// The policy: base 5 ms, cap 2 s, unlimited attempts, conflicts retried.
    ///
    /// The AWS simulator sleeps `min(cap, base·2ⁿ)` before retry `n` counting from 1, so its
    /// first exponential delay is 10 ms: `initial` is `2·base`. Decorrelated draws
    /// `U(base, 3·previous)` from `previous = base`, as ours does.
    pub fn policy(self) -> Policy {
        let exponential = Backoff::Exponential {
            base: occ_ms(10.0),
            multiplier: 2.0,
            min_delay: Duration::ZERO,
            max_delay: occ_ms(2000.0),
        };
        let (backoff, jitter) = match self {
            OccStrategy::None => (Backoff::None, Jitter::None),
            OccStrategy::Exponential => (exponential, Jitter::None),
            OccStrategy::Full => (exponential, Jitter::Full),
            OccStrategy::Equal => (exponential, Jitter::Equal),
            OccStrategy::Decorrelated => {
                (Backoff::Decorrelated { base: occ_ms(5.0), max_delay: occ_ms(2000.0) }, Jitter::Decorrelated)
            }
        };
        build(
            Policy::builder()
                .max_attempts(u32::MAX)
                .retry_on(RetryOn::none().kind(ErrorKind::Conflict))
                .backoff(backoff)
                .jitter(jitter),
        )
    }
}

/// The write lost the race: another client wrote between this client's read and its write.
#[derive(Debug)]
pub struct Conflict;

impl Classify for Conflict {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Conflict).with_status(409)
    }
}

/// The totals of one OCC run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OccRun {
    /// Write attempts (the AWS post's "work": one call is one read plus one write).
    pub calls: u64,
    /// Model milliseconds until the last client's write succeeded.
    pub time_ms: f64,
}

/// One run of the OCC experiment: `clients` clients each update the row once.
pub fn occ_run(strategy: OccStrategy, clients: usize, seed: u64) -> OccRun {
    paused(seed, async move {
        let policy = strategy.policy();
        let version = Cell::new(0u64);
        let writes = Cell::new(0u64);
        let rng = model_rng(seed);
        let hop_ms = Normal::<f64>::new(10.0, 2.0).expect("a valid normal");
        // |Normal(10 ms, 2 ms)| per network hop, as in the AWS model.
        let hop = || occ_ms(hop_ms.sample(&mut *rng.borrow_mut()).abs());
        let (version, writes, hop) = (&version, &writes, &hop);
        let attempt = move || async move {
            sleep(hop()).await; // the read request reaches the row
            let seen = version.get();
            sleep(hop() + hop()).await; // the version travels back; the write travels out
            writes.set(writes.get() + 1);
            let won = version.get() == seen;
            if won {
                version.set(seen + 1);
            }
            sleep(hop()).await; // the verdict travels back
            if won { Ok(()) } else { Err(Conflict) }
        };
        let start = Instant::now();
        let policy = &policy;
        let mut clients: FuturesUnordered<_> =
            (0..clients).map(|_| async move { policy.call::<(), Conflict>().retry(attempt).await }).collect();
        while let Some(out) = clients.next().await {
            out.expect("unlimited attempts end in a write");
        }
        OccRun { calls: writes.get(), time_ms: start.elapsed().as_secs_f64() * 1000.0 / OCC_SCALE }
    })
}
