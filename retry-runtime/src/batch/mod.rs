//! Batch retry: many inputs through one operation, at most K at once, each item retried on
//! its own schedule, every attempt paced by the endpoint's [`Limiter`](crate::Limiter), which
//! holds the whole batch when the server says "slow down".
//!
//! The public documentation, design included, is on [`Batch`].
//!
//! This file holds [`Batch`] itself and its design notes. The rest, one concern per file:
//! - `builder`: [`BatchBuilder`], its defaults, and [`BatchError`] when it cannot build.
//! - `results`: what a batch reports: [`ItemResult`] per item, [`Progress`] for the whole.
//! - `run`: [`Batch::run`] and [`Batch::stream`]: the items' loop, their shared counters, and
//!   the [`BatchStream`] of results.
//! - `chain`: [`Batch::fallback`]: the same along a fallback chain, each item moving on as a
//!   plain call does ([`BatchFallback`]).

mod builder;
mod chain;
mod results;
mod run;

pub use builder::{BatchBuilder, BatchError, DEFAULT_BATCH_CONCURRENCY};
pub use chain::BatchFallback;
pub use results::{ItemResult, Progress};
pub use run::BatchStream;

#[cfg(doc)]
use crate::{ErrorKind, Policy, RetryExt};
use core::fmt;

/// Runs many inputs through one operation under a [`Policy`]: at most `K` items at once,
/// each retried on its own schedule, every attempt paced by a [`Limiter`](crate::Limiter),
/// and one result per item in input order. Build one with [`Policy::batch`].
///
/// A `Batch` is a reusable configuration: each [`run`](Self::run) or
/// [`stream`](Self::stream) has its own counters, and its own limiter unless the batch was
/// given the endpoint's ([`BatchBuilder::limiter`]).
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, ErrorKind, Policy};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().concurrency(4).build().unwrap();
/// let results = batch
///     .run(["ok", "", "ok"], |prompt: &str| async move {
///         if prompt.is_empty() { Err(ApiError::from_status(400)) } else { Ok(prompt.len()) }
///     })
///     .await;
/// assert_eq!(results[0].outcome.as_ref().ok(), Some(&2));
/// assert_eq!(results[1].outcome.as_ref().unwrap_err().kind(), ErrorKind::BadRequest);
/// assert_eq!(results[1].attempts, 1); // a 400 is never retried
/// # }
/// ```
///
/// # Design
///
/// - **Bounded, lazy, in-task.** The batch pulls inputs from the iterator only when one of
///   its `K` slots is free, and runs the items as futures inside the caller's task
///   ([`FuturesUnordered`](futures_util::stream::FuturesUnordered) under
///   [`buffer_unordered`](futures_util::StreamExt::buffer_unordered)): no `tokio::spawn`, so
///   dropping the batch drops every item, and memory holds `K` item futures plus the results,
///   never `N` futures.
/// - **Per-item scheduling.** Each item is one [`Call`](crate::call::Call) under the policy: a
///   failed item sleeps its own back-off (or Retry-After) inside its slot and retries as soon
///   as that is over; no item waits for a "round" of others. An item keeps its slot while it
///   backs off, so at most `K` attempts are ever in flight.
/// - **One pacer per endpoint.** Every attempt waits for the batch's
///   [`Limiter`](crate::Limiter) first: the endpoint's when the batch is given one with
///   [`BatchBuilder::limiter`], so that a batch and the annotated fns calling the same
///   provider pace together; otherwise one of the run's own. When an attempt fails as
///   [`RateLimited`](ErrorKind::RateLimited) or [`Overloaded`](ErrorKind::Overloaded), the
///   limiter holds every new attempt until the server's Retry-After has passed: one item
///   discovers the limit; the other `K − 1` wait instead of each paying a 429 for it.
/// - **Then a pace, not a herd.** Releasing `K` waiting attempts at the same instant would
///   meet the limit again at once (a token bucket has one token at that instant, not `K`).
///   The limiter admits them at a rate instead: the provider's (from its headers, see
///   [`Limiter::observe`](crate::Limiter::observe)), the configured one, or one learned from
///   the throttles (see [`Limiter`](crate::Limiter)). Before it knows a rate, a fresh limiter
///   admits a window of 10 attempts that grows with each success (a slow start), so a batch
///   meets a rate-limited provider a window at a time rather than `K` at once.
///
///   Against the chaos server's token bucket (12,000 requests a minute, burst 8), 1,000
///   prompts at `K = 32` over real TCP get a few dozen 429s with the limiter and about
///   4,000–9,000 without, in the same time (`tests/it/batch_e2e.rs`).
///
/// # With `#[llm_retry]`
///
/// The batch *is* the retry loop. Give it the raw operation: an `async fn` or closure that
/// makes one attempt. An `#[llm_retry]`-annotated fn already retries inside each call, so a
/// batch of them would retry twice (up to `inner × outer` attempts per item), and the inner
/// loop would sleep through 429s that the batch's limiter never hears of (unless the fn
/// names the same limiter). Keep the one-attempt fn
/// next to the annotated one and batch the former; or, to batch the annotated fn as is, give
/// the batch a policy with `max_attempts(1)`, so that it only bounds concurrency and keeps
/// order.
///
/// ```
/// use llm_retry_runtime::{RetryExt, ApiError, Policy};
///
/// async fn ask_once(prompt: String) -> Result<usize, ApiError> {
///     // One HTTP request; a 429 becomes `ApiError::from_response(429, &headers, &body)`.
///     Ok(prompt.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let batch = Policy::DEFAULT.batch().concurrency(32).build().unwrap();
/// let prompts = (0..100).map(|i| format!("prompt {i}"));
/// let results = batch.run(prompts, ask_once).await;
/// assert_eq!(results.len(), 100);
/// assert!(results.iter().enumerate().all(|(i, r)| r.index == i && r.outcome.is_ok()));
/// # }
/// ```
#[derive(Clone)]
pub struct Batch {
    config: BatchBuilder,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("config", &self.config).finish()
    }
}

impl Batch {
    /// How many items run at once.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// assert_eq!(llm_retry_runtime::Policy::DEFAULT.batch().build().unwrap().concurrency(), 16);
    /// ```
    pub fn concurrency(&self) -> usize {
        self.config.concurrency
    }

    /// Whether rate limits hold the whole batch: its attempts go through a limiter.
    ///
    /// ```
    /// use llm_retry_runtime::RetryExt;
    /// assert!(llm_retry_runtime::Policy::DEFAULT.batch().build().unwrap().has_shared_gate());
    /// ```
    pub fn has_shared_gate(&self) -> bool {
        self.config.gate
    }
}
