//! `#[tracing::instrument]` before and after `#[llm_retry]`: outside, one span covers the
//! whole call; inside, each attempt gets its own span.
use llm_retry::{ApiError, llm_retry};

#[tracing::instrument]
#[llm_retry(max = 3)]
async fn span_per_attempt(prompt: &str) -> Result<String, ApiError> {
    tracing::info!("attempt");
    Ok(prompt.to_owned())
}

#[llm_retry(max = 3)]
#[tracing::instrument]
async fn span_per_call(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(span_per_attempt("hi"));
    drop(span_per_call("hi"));
}
