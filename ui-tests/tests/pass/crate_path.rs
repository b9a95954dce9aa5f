//! `crate = "..."`: the attribute reached through a re-export.
mod reexports {
    pub use llm_retry;
}

use llm_retry::ApiError;
use reexports::llm_retry::llm_retry;

#[llm_retry(max = 3, crate = "reexports::llm_retry")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(max = 3, crate = crate::crate_path::reexports::llm_retry)]
async fn chat_path(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(chat_path("hi"));
}
