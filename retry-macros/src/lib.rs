//! The `#[llm_retry]` attribute. Use it through the `llm-retry` crate, which re-exports it
//! with the runtime it expands to.
//!
//! A thin entry point, then three phases, each testable without a compiler plugin: `args`
//! parses the attribute's tokens into span-carrying entries, `config` validates them into a
//! typed `RetryConfig` (every error, at its token; what a valid policy is, the rulebook crate
//! `llm-retry-rules` decides), and `expand` checks the fn and generates the retry loop from
//! the config alone (`policy` writes the policy's `const` builder).
#![forbid(unsafe_code)]

mod args;
mod config;
mod ctxt;
mod early_exit;
mod expand;
mod policy;
mod stream;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Rewrites an `async fn` returning `Result<T, E>` (with `E: llm_retry::Classify`) into a
/// retry loop. Every key is optional; `#[llm_retry]` alone gives the LLM defaults: 4 attempts,
/// exponential backoff from 500 ms doubling up to 20 s with full jitter, the official SDKs'
/// retryable set, Retry-After honoured up to 120 s.
///
/// ```text
/// #[llm_retry(max = 5, backoff = "exponential", on = [RateLimited, Timeout, 503], deadline = "2m")]
/// async fn chat(client: &Client, prompt: &str) -> Result<String, ApiError> { ... }
/// ```
///
/// Durations are strings with a unit: `"500ms"`, `"2s"`, `"1.5s"`, `"1m"`, `"1h"`. The bounds
/// below are the rulebook's (`llm_retry_rules::Problem`), the same the builder enforces; a
/// misconfiguration is a compile error at the offending token that names the fix.
///
/// | key | example | meaning |
/// | --- | --- | --- |
#[doc = llm_retry_rules::key_reference!()]
///
/// Kinds: `Connection`, `Timeout`, `RateLimited`, `Overloaded`, `Server`, `RequestTimeout`,
/// `Conflict`, `InvalidOutput`, `Other`. `Auth`, `BadRequest`, `NotFound`, `QuotaExhausted`,
/// `ContextLengthExceeded`, `ContentFiltered` and statuses 400, 401, 402, 403, 404, 413, 422 can
/// never succeed on a retry and are rejected, with the reason.
///
/// The `llm-retry` crate's documentation of this attribute has compiled examples of each form.
#[proc_macro_attribute]
pub fn llm_retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
