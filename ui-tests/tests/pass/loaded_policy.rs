//! `policy = PATH`: a `static PolicySlot` set at startup, with the call's own options beside it,
//! on a plain fn and on a stream.
use futures::Stream;
use futures::stream;
use llm_retry::{ApiError, Budget, Policy, config::PolicySlot, llm_retry, stream::Resume};

static CHAT_POLICY: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);
static BUDGET: Budget = Budget::new();

mod config {
    pub static STREAM_POLICY: llm_retry::config::PolicySlot =
        llm_retry::config::PolicySlot::new("stream", llm_retry::Policy::DEFAULT);
}

#[llm_retry(policy = CHAT_POLICY, deadline = "2m", attempt_timeout = "30s", budget = BUDGET, name = "chat")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(stream = "continue", policy = config::STREAM_POLICY, first_chunk_timeout = "30s")]
async fn stream_chat(prompt: &str, resume: Resume) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(stream::iter([Ok(format!("{prompt}{}", resume.text()))]))
}

#[test]
fn compiles() {
    CHAT_POLICY.set(Policy::builder().max_attempts(2).build().unwrap()).unwrap();
    drop(chat("hi"));
    drop(stream_chat("hi"));
}
