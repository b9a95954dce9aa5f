//! `#[llm_retry]` inside an `#[async_trait]` impl, alone and stacked with
//! `#[tracing::instrument]` in both orders. `#[async_trait]` sits on the impl, so it always
//! expands first; the attribute recognises its rewrite and retries inside the boxed future.
use async_trait::async_trait;
use llm_retry::{ApiError, llm_retry};

#[async_trait]
trait Chat {
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
    async fn retry_then_trace(&self, prompt: &str) -> Result<String, ApiError>;
    async fn trace_then_retry(&self, prompt: &str) -> Result<String, ApiError>;
}

struct Client;

#[async_trait]
impl Chat for Client {
    #[llm_retry(max = 3)]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }

    #[llm_retry(max = 3)]
    #[tracing::instrument(skip(self))]
    async fn retry_then_trace(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }

    #[tracing::instrument(skip(self))]
    #[llm_retry(max = 3)]
    async fn trace_then_retry(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

fn assert_send<T: Send>(_: T) {}

#[test]
fn compiles() {
    assert_send(Client.chat("hi"));
    assert_send(Client.retry_then_trace("hi"));
    assert_send(Client.trace_then_retry("hi"));
}
