//! The herd simulator's models (issue #8), shared by `examples/simulate.rs` and
//! `tests/it/simulation_smoke.rs`.
//!
//! Every client here is the project's real retry code: a [`Policy`] driven through
//! [`Policy::call`] (or [`Call::settle`](llm_retry::call::Call::settle) where a loop sleeps itself),
//! a [`Batch`](llm_retry::batch::Batch), a [`Limiter`] or a [`Budget`]. Only the *servers* are models:
//! async fns that sleep on tokio's clock. Each run gets its own current-thread runtime with a
//! paused clock, so an hour of simulated traffic takes as long as its events take to process,
//! and the engine's jitter generator and the model's own generator are both seeded: a run is
//! a pure function of its seed.
//!
//! This file holds what the scenarios share: the paused runtime, the seeded model generator and
//! the statistics. One file per scenario, under `sim/`:
//! - `occ`: A, the AWS "Exponential Backoff And Jitter" experiment (optimistic concurrency).
//! - `provider` and `llm`: B, an LLM batch against a rate-limited provider (the provider
//!   model, its headers and its token-bound variant, then the client strategies and the run).
//! - `open_loop`: C, outage and partial failure under open-loop Poisson traffic.
//! - `failover`: D, a primary outage with a fallback chain, with and without a circuit breaker.

#[path = "sim/failover.rs"]
mod failover;
#[path = "sim/llm.rs"]
mod llm;
#[path = "sim/occ.rs"]
mod occ;
#[path = "sim/open_loop.rs"]
mod open_loop;
#[path = "sim/provider.rs"]
mod provider;

pub use failover::{FAILOVER_CALM, FAILOVER_LATENCY, FAILOVER_OUTAGE, FAILOVER_RATE, FailoverRun, failover_run};
pub use llm::{LlmRun, LlmStrategy, llm_run};
pub use occ::{OccRun, OccStrategy, occ_run};
pub use open_loop::{Failure, Guard, OpenLoop, OpenRun, open_run};
pub use provider::{Hint, LlmConfig};

use llm_retry::{Policy, PolicyBuilder};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::cell::RefCell;
use std::future::Future;

/// Runs `fut` to completion on a fresh current-thread runtime whose clock starts paused (it
/// jumps to the next timer whenever every task is idle), with the engine's jitter generator
/// on this thread seeded with `seed`.
pub fn paused<F: Future>(seed: u64, fut: F) -> F::Output {
    llm_retry::rng::seed_thread_rng(seed);
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime")
        .block_on(fut)
}

/// The model's own generator for run `seed` (network hops, service times, arrivals), kept
/// apart from the engine's so that the two streams do not shift each other.
fn model_rng(seed: u64) -> RefCell<SmallRng> {
    RefCell::new(SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15))
}

/// A policy from a builder that the simulator knows is valid.
fn build(b: PolicyBuilder) -> Policy {
    b.build().unwrap_or_else(|e| panic!("simulator policy: {e}"))
}

/// The value at quantile `q` of `v` (nearest rank); 0 for an empty slice.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The mean of `v`; 0 for an empty iterator.
pub fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = v.into_iter().fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}
