//! # llm-retry
//!
//! Retries for LLM API calls that survive rate limits, overloads and dropped connections.
//! Write `#[llm_retry(...)]` on an `async fn`; the attribute rewrites it into a retry loop
//! backed by [`llm_retry_runtime`]. See the README for the attribute reference.
#![forbid(unsafe_code)]

pub use llm_retry_macros::llm_retry;
pub use llm_retry_runtime::*;

#[doc(hidden)]
pub use llm_retry_runtime::__private;
