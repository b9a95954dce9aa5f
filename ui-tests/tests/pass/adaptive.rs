//! `adaptive = true` (a window of this fn's own), `adaptive = PATH` (one shared per endpoint)
//! and `adaptive = false` (none).
use llm_retry::{Adaptive, ApiError, llm_retry};

static OPENAI_ERRORS: Adaptive = Adaptive::new();

#[llm_retry(adaptive = true)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(adaptive = OPENAI_ERRORS)]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(adaptive = false)]
async fn translate(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(summarize("hi"));
    drop(translate("hi"));
}
