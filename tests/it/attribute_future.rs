//! The annotated fn's future: `Send` when the body is, and small.

use llm_retry::{ApiError, llm_retry};
use std::mem::size_of_val;

struct Client {
    prefix: String,
}

async fn send(prompt: &str) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(prompt.to_owned())
}

impl Client {
    async fn plain(&self, prompt: &str) -> Result<String, ApiError> {
        let reply = send(prompt).await?;
        Ok(format!("{}{reply}", self.prefix))
    }

    #[llm_retry]
    async fn retried(&self, prompt: &str) -> Result<String, ApiError> {
        let reply = send(prompt).await?;
        Ok(format!("{}{reply}", self.prefix))
    }

    /// The same body with no early exit: it runs as a plain block, not in an async block.
    #[llm_retry]
    async fn retried_plain(&self, prompt: &str) -> Result<String, ApiError> {
        send(prompt).await.map(|reply| format!("{}{reply}", self.prefix))
    }

    #[llm_retry(deadline = "1m", attempt_timeout = "10s")]
    async fn timed(&self, prompt: &str) -> Result<String, ApiError> {
        let reply = send(prompt).await?;
        Ok(format!("{}{reply}", self.prefix))
    }
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn the_future_is_send_when_the_body_is() {
    let c = Client { prefix: String::new() };
    assert_send(&c.retried("hi"));
    assert_send(&c.retried_plain("hi"));
    assert_send(&c.timed("hi"));
}

/// Measured with rustc 1.95.0: body 96 B, `#[llm_retry]` 208 B (a body with `?`, in its
/// async block) or 176 B (the same reply with no early exit, as a plain block), with a
/// deadline and an attempt timeout 408 B (8 B of it the place in flight a capped limiter's attempt holds). `Call` is 64 B (hooks and per-endpoint controls that
/// are absent cost nothing). A timed attempt adds its timer (an `Option<Sleep>`) beside the
/// body, and the call keeps the deadline and timeout (32 B). This pins the timed size against
/// regressions.
#[test]
fn the_timed_future_size_is_pinned() {
    let c = Client { prefix: String::new() };
    let body = size_of_val(&c.plain("hi"));
    let retried = size_of_val(&c.retried("hi"));
    let plain = size_of_val(&c.retried_plain("hi"));
    let timed = size_of_val(&c.timed("hi"));
    println!(
        "future sizes: body {body} B, #[llm_retry] {retried} B, as a plain block {plain} B, \
         with deadline + attempt_timeout {timed} B"
    );
    assert!(timed <= body + 320, "body {body} B, timed {timed} B");
}

/// The target: at most 160 bytes over the body.
#[test]
fn the_future_is_at_most_160_bytes_larger_than_the_body() {
    let c = Client { prefix: String::new() };
    let body = size_of_val(&c.plain("hi"));
    let retried = size_of_val(&c.retried("hi"));
    assert!(retried <= body + 160, "body {body} B, annotated {retried} B");
    let plain = size_of_val(&c.retried_plain("hi"));
    assert!(plain <= body + 160, "body {body} B, annotated as a plain block {plain} B");
}
