//! The variants both benches measure: the bodies, the annotated fns, and the hand-written loop.

use llm_retry::{ApiError, Classify, llm_retry};
use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

pub async fn ready(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x))
}

pub async fn yielding(x: u64) -> Result<u64, ApiError> {
    tokio::task::yield_now().await;
    Ok(black_box(x))
}

#[llm_retry]
pub async fn annotated_ready(x: u64) -> Result<u64, ApiError> {
    ready(x).await
}

#[llm_retry]
pub async fn annotated_yielding(x: u64) -> Result<u64, ApiError> {
    yielding(x).await
}

/// What a careful hand-written loop does: 4 attempts, exponential backoff, no jitter.
macro_rules! hand_loop {
    ($attempt:expr) => {{
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            match $attempt.await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 4 && matches!(e.classify(), c if llm_retry::RetryOn::DEFAULT.matches(c.kind, c.status)) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(20));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }};
}

/// The hand loop as a generic helper, as backon's `.retry()` is used: monomorphised for each
/// caller, so the compiler can inline it into every loop that calls it.
pub async fn hand_written<F: Future<Output = Result<u64, ApiError>>>(op: impl Fn() -> F) -> Result<u64, ApiError> {
    hand_loop!(op())
}

/// The hand loop written inside the fn, which is what `#[llm_retry]` replaces: one plain
/// async fn, compiled once however many callers it has, as the annotated fn is.
pub async fn hand_written_ready(x: u64) -> Result<u64, ApiError> {
    hand_loop!(ready(x))
}

/// [`hand_written_ready`] with the body that yields once.
pub async fn hand_written_yielding(x: u64) -> Result<u64, ApiError> {
    hand_loop!(yielding(x))
}
