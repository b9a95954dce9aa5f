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
//! The crate root holds what most users name: [`Policy`] and its builder (from the rulebook,
//! `llm-retry-rules`), [`RetryExt`] (what runs a policy), [`ApiError`], [`ErrorKind`],
//! [`Classify`], [`RetryEvent`], [`stats()`], the per-endpoint controls ([`Limiter`],
//! [`Budget`], [`Adaptive`]), and the error types a call can end in. The rest is in modules:
//!
//! - [`call`]: a call's own state for loops that run attempts themselves ([`call::Call`]).
//! - [`stream`]: streaming retry ([`stream::RetryStream`]) in Restart, Continue or Skip
//!   mode, with typed [`stream::StreamEvent`]s; [`stream::text_deltas`] reads SSE bodies.
//! - [`batch`]: many inputs at bounded concurrency behind one shared rate-limit gate.
//! - [`http`]: classification of HTTP responses, and Retry-After in every header form.
//! - [`limits`]: the per-endpoint controls' builders and snapshots.
//! - [`failover`]: circuit breakers ([`failover::Breaker`]) and fallback chains of targets
//!   ([`failover::Fallback`]): when a model or provider is down, move on to the next.
//! - [`config`]: a policy set once at startup ([`config::PolicySlot`]); with the `serde`
//!   feature, policies and per-endpoint settings from TOML, JSON or the environment.
//! - [`stats`](mod@stats): per-site counters and the process-wide snapshot; [`policy`]: the rulebook's
//!   bounds and problems; [`backoff`]: drawing the jitter; [`rng`]: seeding it in tests.
//! - `metrics` (feature `metrics`): export through the `metrics` crate.
//!
//! Inside, one concern per module: `engine` (the per-call state machine the attribute and
//! the builder share), `classify`, `api_error`, `std_impls` and `integrations` (error values
//! to kinds), `retry_after`, `hooks` and `events` (tracing), `outcome` (why a call gave up),
//! `budget`, `limiter` and `adaptive`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adaptive;
mod any_error;
mod api_error;
pub mod backoff;
pub mod batch;
mod breaker;
mod budget;
mod classify;
pub mod config;
mod engine;
mod events;
pub mod failover;
mod hooks;
pub mod http;
mod integrations;
mod limiter;
pub mod limits;
mod outcome;
mod providers;
mod rate_headers;
mod retry_after;
mod retry_ext;
pub mod rng;
pub mod stats;
mod std_impls;
pub mod store;
pub mod stream;
mod timeout;
mod validate;

#[doc(hidden)]
pub mod __private;
#[cfg(feature = "metrics")]
pub mod metrics;

// The front door: what most users name.
pub use adaptive::Adaptive;
pub use api_error::ApiError;
pub use budget::Budget;
pub use classify::{Classification, Classify};
pub use hooks::RetryEvent;
pub use limiter::Limiter;
pub use llm_retry_rules::{Backoff, ErrorKind, Jitter, Policy, PolicyBuilder, PolicyError, RetryOn, Rule};
pub use outcome::GiveUp;
pub use retry_ext::RetryExt;
pub use stats::stats;
pub use timeout::Timeout;
pub use validate::InvalidOutput;

/// A call's own state and its attempts, for loops that run the attempts themselves, and the
/// type-level plumbing of `Call`'s bounds (hidden: never named in user code).
pub mod call {
    pub use crate::engine::{Attempt, Call, Pause, RetryPlan};
    pub use crate::hooks::DelaySource;
    #[doc(hidden)]
    pub use crate::{
        engine::{Mode, Timed, Untimed},
        hooks::{
            ControlSet, Controls, HookSet, Hooks, Notifier, NotifySlot, Predicate, SharedSlot, ValidateSlot, Validator,
            WhenSlot,
        },
    };
}

/// The rulebook's bounds and its account of what is wrong with a policy
/// (from `llm-retry-rules`, which the attribute shares).
pub mod policy {
    pub use llm_retry_rules::{Field, MAX_JITTER_FACTOR, MAX_RULE_ATTEMPTS, MAX_RULES, Problem};
}
