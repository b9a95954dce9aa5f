//! The expansion is clean under strict lints, clippy's included: `cargo clippy --all-targets`
//! (as CI runs it) checks this module, so that a user who denies these lints in their own crate
//! never sees one fire inside `#[llm_retry]`'s output. The lints are denied for this module only
//! (an inner attribute), which is enough: a lint fires where the expanded code sits.
#![deny(warnings, clippy::all, clippy::pedantic, unused_qualifications)]

use async_trait::async_trait;
use llm_retry::{ApiError, InvalidOutput, RetryEvent, llm_retry};

fn log_retry(_: &RetryEvent<'_, ApiError>) {}

fn non_empty(text: &str) -> Result<(), InvalidOutput> {
    if text.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
}

#[allow(clippy::ptr_arg)] // a validator receives `&T`, here `&String`
fn validate_reply(text: &String) -> Result<(), InvalidOutput> {
    non_empty(text)
}

struct Client;

impl Client {
    #[llm_retry(max = 3, deadline = "1m", attempt_timeout = "10s", notify = log_retry, validate = validate_reply)]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }

    #[llm_retry(
        max = 6,
        jitter = "none",
        on = [RateLimited, Connection, 500, 502, 503],
        rule(RateLimited, max = 3, backoff = "fixed", delay = "60s"),
        rule(502, max = 2),
    )]
    async fn table(&mut self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

#[async_trait]
trait Chat {
    async fn chat(&self, prompt: &str) -> Result<String, ApiError>;
}

#[async_trait]
impl Chat for Client {
    #[llm_retry(max = 2)]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

/// A body of statements with no early exit runs as a plain block; one with an early exit in
/// its own async block; and one that always panics leaves the loop's glue unreachable.
#[llm_retry(max = 2)]
async fn statements(prompt: &str) -> Result<String, ApiError> {
    let reply = prompt.to_owned();
    assert!(!reply.is_empty());
    Ok(reply)
}

#[llm_retry(max = 2)]
async fn early_exit(prompt: &str) -> Result<String, ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::from_status(400));
    }
    Ok(prompt.to_owned())
}

#[llm_retry(max = 2)]
async fn always_panics(prompt: &str) -> Result<String, ApiError> {
    panic!("{prompt}")
}

/// The stream form: borrowed, owned and `Copy` arguments, and a `Resume`.
#[llm_retry(stream = "continue", max = 3, deadline = "1m", first_chunk_timeout = "5s", notify = log_retry)]
async fn stream_chat(
    prompt: &str,
    model: String,
    n: u32,
    resume: llm_retry::stream::Resume,
) -> Result<impl futures::Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(futures::stream::iter([Ok(format!("{prompt}{model}{n}{}", resume.text()))]))
}

#[tokio::test]
async fn strict_lints_accept_the_stream_expansion() {
    let text = futures::StreamExt::collect::<Vec<_>>(std::pin::pin!(stream_chat("a", "b".into(), 1))).await;
    assert_eq!(text.len(), 1);
}

#[tokio::test]
async fn strict_lints_accept_the_expansion() {
    let mut c = Client;
    assert_eq!(c.chat("a").await.unwrap(), "a");
    assert_eq!(c.table("b").await.unwrap(), "b");
    assert_eq!(Chat::chat(&c, "c").await.unwrap(), "c");
    assert_eq!(statements("d").await.unwrap(), "d");
    assert_eq!(early_exit("").await.unwrap_err().status(), Some(400));
    assert!(tokio::spawn(always_panics("e")).await.unwrap_err().is_panic());
}
