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
mod suggest;

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
/// | `max` | `max = 5` | most attempts, the first included; at least 1 (`max = 1` disables retries) |
/// | `backoff` | `backoff = "exponential"` | `"none"`, `"fixed"`, `"linear"`, `"exponential"` (default), `"decorrelated"` |
/// | `delay` | `delay = "1s"` | the fixed backoff's delay, above zero (default 1 s) |
/// | `base` | `base = "250ms"` | the first delay of linear, exponential and decorrelated (default 500 ms); above zero but for linear |
/// | `increment` | `increment = "1s"` | the linear step per retry (default 500 ms) |
/// | `multiplier` | `multiplier = 1.5` | exponential growth, finite and ≥ 1.0 (default 2.0) |
/// | `min_delay` | `min_delay = "100ms"` | the exponential floor (default 0) |
/// | `max_delay` | `max_delay = "10s"` | the cap (default 20 s); above zero, ≥ `base` and ≥ `min_delay` |
/// | `jitter` | `jitter = "equal"` | `"none"`, `"full"` (default), `"equal"`, `"proportional"`, `"decorrelated"` |
/// | `jitter_factor` | `jitter_factor = 0.5` | with `jitter = "proportional"`: the spread, 0.0..=10.0 (default 0.25) |
/// | `on` | `on = [RateLimited, 503]` | what to retry, kinds and statuses; replaces the default set |
/// | `rule` | `rule(RateLimited, max = 3, delay = "60s", backoff = "fixed")` | a per-kind or per-status override of `max` (at most the attribute's) and the backoff and jitter keys; at most 6 |
/// | `deadline` | `deadline = "2m"` | the whole call's limit, sleeps included (needs `E: From<Timeout>`) |
/// | `attempt_timeout` | `attempt_timeout = "30s"` | each attempt's limit (needs `E: From<Timeout>`) |
/// | `retry_after` | `retry_after = false` | honour Retry-After and the rate-limit headers (default `true`) |
/// | `max_retry_after` | `max_retry_after = "60s"` | the longest hint waited for, above zero; a longer one gives up (default 120 s) |
/// | `validate` | `validate = non_empty` | `fn(&T) -> Result<(), InvalidOutput>`; a rejected value is retried |
/// | `notify` | `notify = log_retry` | `fn(&RetryEvent<'_, E>)`, called before each sleep |
/// | `when` | `when = is_transient` | `fn(&E) -> bool`, replacing the `on` decision |
/// | `name` | `name = "openai.chat"` | the stats key (default `module::path::fn_name`) |
/// | `crate` | `crate = "my_app::llm_retry"` | where the `llm_retry` crate is, for re-exports |
/// | `limiter` | `limiter = OPENAI` | a `static Limiter` shared per endpoint |
/// | `budget` | `budget = OPENAI_BUDGET` | a `static Budget` shared per endpoint |
/// | `adaptive` | `adaptive = true` | back-off scaled by the recent error rate: `true` (this fn's own), or a `static Adaptive` |
/// | `stream` | `stream = "continue"` | the fn opens one attempt of a stream: `"restart"`, `"continue"`, `"skip"` |
/// | `first_chunk_timeout` | `first_chunk_timeout = "30s"` | with `stream`: from opening an attempt to its first chunk |
/// | `idle_timeout` | `idle_timeout = "15s"` | with `stream`: between two chunks |
///
/// Kinds: `Connection`, `Timeout`, `RateLimited`, `Overloaded`, `Server`, `RequestTimeout`,
/// `Conflict`, `InvalidOutput`, `Other`. `Auth`, `BadRequest`, `NotFound`, `QuotaExhausted`,
/// `ContextLengthExceeded`, `ContentFiltered` and statuses 400, 401, 403, 404, 413, 422 can
/// never succeed on a retry and are rejected, with the reason.
///
/// The `llm-retry` crate's documentation of this attribute has compiled examples of each form.
#[proc_macro_attribute]
pub fn llm_retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
