#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use llm_retry_macros::llm_retry;

// The front door: what most users name.
pub use llm_retry_runtime::{
    Adaptive, ApiError, Backoff, Budget, Classification, Classify, ErrorKind, GiveUp, InvalidOutput, Jitter, Limiter,
    Policy, PolicyBuilder, PolicyError, RetryEvent, RetryExt, RetryOn, Rule, Timeout, stats,
};

// The rest, one module per concern.
pub use llm_retry_runtime::{backoff, batch, call, config, failover, http, limits, policy, rng, store, stream};

#[cfg(feature = "metrics")]
pub use llm_retry_runtime::metrics;

#[doc(hidden)]
pub use llm_retry_runtime::__private;
