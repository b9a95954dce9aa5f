//! Every key at once, including the article's per-kind table.
use llm_retry::{ApiError, InvalidOutput, RetryEvent, llm_retry};

mod hooks {
    use super::*;

    // `validate` hands the check a `&String`: the plainest signature a user writes for it.
    #[allow(clippy::ptr_arg)]
    pub fn non_empty(text: &String) -> Result<(), InvalidOutput> {
        if text.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
    }

    pub fn log_retry(ev: &RetryEvent<'_, ApiError>) {
        eprintln!("{} failed: {}", ev.attempt, ev.kind);
    }
}

fn is_transient(e: &ApiError) -> bool {
    e.status().is_none_or(|s| s >= 500)
}

#[llm_retry(
    max = 6,
    backoff = "exponential",
    base = "1s",
    multiplier = 2.0,
    min_delay = "500ms",
    max_delay = "30s",
    jitter = "equal",
    on = [RateLimited, Connection, Timeout, 500, 502, 503, 504],
    rule(RateLimited, max = 3, backoff = "fixed", delay = "60s"),
    rule(Connection, max = 5, backoff = "exponential"),
    rule(502, max = 2),
    rule(500, max = 3, backoff = "exponential", jitter = "full"),
    rule(503, max = 3, backoff = "linear", base = "1s", increment = "1s", max_delay = "5s"),
    rule(504, max = 2, backoff = "decorrelated", base = "200ms", max_delay = "3s"),
    deadline = "2m",
    attempt_timeout = "30s",
    retry_after = true,
    max_retry_after = "90s",
    validate = hooks::non_empty,
    notify = hooks::log_retry,
    name = "openai.chat",
)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(when = is_transient, backoff = "none", retry_after = false)]
async fn custom(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(jitter = "proportional", jitter_factor = 0.5, backoff = "linear")]
async fn proportional(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(custom("hi"));
    drop(proportional("hi"));
}
