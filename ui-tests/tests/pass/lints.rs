//! The expansion is warning-free under strict lints (clippy's are checked by
//! `tests/it/expand_lints.rs` under `cargo clippy --all-targets`).
#![deny(warnings, unused_qualifications, unused_results, missing_docs, unreachable_pub)]
//! Crate docs.

use llm_retry::{ApiError, RetryEvent, llm_retry};

fn log_retry(_: &RetryEvent<'_, ApiError>) {}

/// Documented.
#[llm_retry(max = 3, deadline = "1m", notify = log_retry)]
pub async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
}
