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
    assert_send(&c.timed("hi"));
}

/// Measured with rustc 1.95.0: body 96 B, `#[llm_retry]` 536 B, with a deadline and an
/// attempt timeout 632 B. The overhead is the runtime's: `Call` (88 B), tokio's `Sleep`
/// (112 B) inside `Call::attempt`'s future, and the body's future held twice there (as the
/// argument and inside the timeout wrapper). This pins today's size against regressions.
#[test]
fn the_future_size_is_pinned() {
    let c = Client { prefix: String::new() };
    let body = size_of_val(&c.plain("hi"));
    let retried = size_of_val(&c.retried("hi"));
    let timed = size_of_val(&c.timed("hi"));
    println!("future sizes: body {body} B, #[llm_retry] {retried} B, with deadline + attempt_timeout {timed} B");
    assert!(retried <= 2 * body + 360, "body {body} B, annotated {retried} B");
    assert!(timed <= 2 * body + 460, "body {body} B, timed {timed} B");
}

/// The target: at most 160 bytes over the body. Needs `Call::attempt` to hold the body's
/// future once (a hand-written future rather than an `async fn` that moves its argument into
/// an inner future) and its `Sleep` boxed on the retry path.
#[test]
#[ignore = "needs the runtime change described above; run with --ignored to measure"]
fn the_future_is_at_most_160_bytes_larger_than_the_body() {
    let c = Client { prefix: String::new() };
    let body = size_of_val(&c.plain("hi"));
    let retried = size_of_val(&c.retried("hi"));
    assert!(retried <= body + 160, "body {body} B, annotated {retried} B");
}
