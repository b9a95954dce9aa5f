//! The rulebook of `llm-retry`: what a valid retry policy is, in one place.
//!
//! The `#[llm_retry]` attribute and the runtime both depend on this crate, as sqlx-macros
//! builds on sqlx-core: the attribute builds a real [`PolicyBuilder`] at compile time and
//! reports each [`PolicyError`] at the key that caused it, and the runtime runs the same
//! policy. So the two accept and reject exactly the same settings. It has no dependencies:
//! random sampling, timers and I/O are the runtime's.
//!
//! - [`ErrorKind`] (`kind`): the LLM error taxonomy, its names and the reasons some kinds
//!   can never succeed on a retry.
//! - [`Backoff`] and [`Jitter`] (`backoff`): how delays grow and spread, as descriptions.
//! - [`RetryOn`] (`retry_on`), [`Rule`] (`rule`) and [`Policy`] with its [`PolicyBuilder`]
//!   (`policy`), whose checks are the one definition of a valid policy.
//! - [`PolicyError`], [`Problem`] and [`Field`] (`error`): what is wrong, and which setting.
//! - `keys`: every key the attribute accepts, with an example of each.
//! - `config` (feature `serde`): a policy read from configuration, in the attribute's keys.
//! - `strategy`: the backoff and jitter keys of one scope, as the attribute and configuration
//!   files both read them.
//! - `duration`: duration strings (`"500ms"`, `"1.5s"`, `"2m"`) as keys and configuration
//!   files write them.
//!
//! ```
//! use llm_retry_rules::{ErrorKind, Field, Policy, Problem, Rule};
//!
//! let bad = Policy::builder().max_attempts(3).rule(Rule::kind(ErrorKind::RateLimited).max_attempts(5));
//! let e = bad.build().unwrap_err();
//! assert_eq!(e.problem(), Problem::RuleAttemptsAboveMax);
//! assert_eq!((e.field(), e.rule()), (Field::MaxAttempts, Some(0)));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backoff;
#[cfg(feature = "serde")]
pub mod config;
pub mod duration;
mod error;
pub mod keys;
mod kind;
mod policy;
mod retry_on;
mod rule;
pub mod settings;
pub mod strategy;
pub mod suggest;

pub use backoff::{Backoff, Jitter};
pub use error::{Field, MAX_JITTER_FACTOR, MAX_RULE_ATTEMPTS, PolicyError, Problem};
pub use kind::{ErrorKind, never_retryable_status_reason};
pub use policy::{MAX_RULES, Policy, PolicyBuilder};
pub use retry_on::RetryOn;
pub use rule::Rule;
