//! The engine behind [`llm-retry`](https://docs.rs/llm-retry): retry policies for LLM API calls.
//!
//! Most users write `#[llm_retry(...)]` on an `async fn` and never name this crate. It can
//! also be used directly:
//!
//! ```
//! use llm_retry_runtime::{RetryExt, ApiError, Policy};
//!
//! const POLICY: Policy = match Policy::builder().max_attempts(3).build() {
//!     Ok(p) => p,
//!     Err(_) => panic!("invalid policy"),
//! };
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mut calls = 0;
//! let answer: Result<&str, ApiError> = POLICY
//!     .retry(|| {
//!         calls += 1;
//!         let n = calls;
//!         async move { if n < 2 { Err(ApiError::from_status(503)) } else { Ok("hello") } }
//!     })
//!     .await;
//! assert_eq!(answer.unwrap(), "hello");
//! # }
//! ```
//!
//! Modules, one concern each:
//! - [`ErrorKind`] (`kind`): the LLM error taxonomy; [`Classify`] (`classify`): error value to kind.
//! - `retry_after`: Retry-After, `retry-after-ms`, `x-ratelimit-reset-*` and `x-should-retry`.
//! - `http`, `api_error`, `std_impls`, `integrations`: classification of HTTP responses,
//!   provider error bodies, std and tokio errors, reqwest and async-openai.
//! - `backoff`: backoff and jitter formulas; `policy`: the `const` policy and its builder.
//! - `engine`: the per-call state machine shared by the attribute and the builder API
//!   ([`Call`], [`Policy::retry`]); `outcome`: why a call gave up.
//! - `hooks`: events handed to `notify`, and the `validate`/`when` hooks; `events`: tracing.
//! - `batch`: many inputs at bounded concurrency, retried per item behind one shared
//!   rate-limit gate ([`Batch`], [`Policy::batch`]).
//! - `stream`: streaming retry ([`RetryStream`], [`Policy::stream`]): reopen a broken LLM
//!   stream in Restart, Continue or Skip mode, with typed [`StreamEvent`]s; [`text_deltas`]
//!   reads OpenAI and Anthropic SSE bodies.
//! - `stats`: per-site counters and the process-wide snapshot; `rng`: seeded jitter.
//! - Per-endpoint controls shared by every call site: `budget` ([`Budget`], retries as a share
//!   of successes), `limiter` ([`Limiter`], CUBIC client-side rate limiting after throttles),
//!   `adaptive` ([`Adaptive`], back-off scaled by the recent error rate), `limits` (their
//!   builders' [`LimitError`]); `metrics` (feature `metrics`): export through the `metrics` crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adaptive;
mod api_error;
pub mod backoff;
mod batch;
mod budget;
mod classify;
mod engine;
mod events;
mod hooks;
mod http;
mod integrations;
mod limiter;
mod limits;
mod outcome;
mod retry_after;
mod retry_ext;
mod rng;
mod stats;
mod std_impls;
mod stream;
mod timeout;
mod validate;

#[doc(hidden)]
pub mod __private;
#[cfg(feature = "metrics")]
pub mod metrics;

pub use adaptive::{Adaptive, AdaptiveBuilder};
pub use api_error::ApiError;
pub use batch::{Batch, BatchBuilder, BatchError, BatchStream, DEFAULT_BATCH_CONCURRENCY, ItemResult, Progress};
pub use budget::{Budget, BudgetBuilder, BudgetStats};
pub use classify::{Classification, Classify};
pub use engine::{Attempt, Call, Pause, RetryPlan};
pub use hooks::{DelaySource, RetryEvent};
pub use limiter::{Limiter, LimiterBuilder, LimiterConfig, LimiterStats};
pub use limits::LimitError;
pub use llm_retry_rules::{
    Backoff, ErrorKind, Field, Jitter, MAX_RULE_ATTEMPTS, MAX_RULES, Policy, PolicyBuilder, PolicyError, Problem,
    RetryOn, Rule,
};
pub use outcome::GiveUp;
pub use retry_after::RetryAfter;
pub use retry_ext::RetryExt;
pub use rng::seed_thread_rng;
pub use stats::{Site, SiteStats, StatsSnapshot, stats};
pub use stream::{
    Received, Resume, RetryStream, StreamChunk, StreamEvent, StreamMode, StreamOptions, TextDeltas, Texts, text_deltas,
};
pub use timeout::Timeout;
pub use validate::InvalidOutput;
/// Type-level plumbing that appears in [`Call`]'s bounds; never named in user code.
#[doc(hidden)]
pub use {
    engine::{Mode, Timed, Untimed},
    hooks::{HookSet, Hooks, Notifier, NotifySlot, Predicate, SharedSlot, Unpaced, ValidateSlot, Validator, WhenSlot},
};
// --- classification re-exports (owned by the classification work) ---
pub use crate::http::{MAX_BODY_BYTES, classify_response, classify_response_at};
pub use retry_after::should_retry_header;
// --- end classification re-exports ---
