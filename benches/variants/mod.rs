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
pub async fn hand_written<F: Future<Output = Result<u64, ApiError>>>(op: impl Fn() -> F) -> Result<u64, ApiError> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 4 && llm_retry::RetryOn::DEFAULT.matches(&e.classify()) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(20));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
