//! Benchmark, not a test: a batch of N items at K = 64 in paused time, measuring wall time and
//! peak heap (every byte allocated on the measuring thread, via `allocation-counter`).
//!
//! ```sh
//! cargo run --release -p llm-retry-runtime --example batch_bench
//! ```
//!
//! Each item sleeps 1–7 ms of paused time; every 100th item fails once with a 503 and is
//! retried after its back-off, and item 5,000 gets a 429 with Retry-After 1 s, which holds the
//! whole batch. `run` keeps every result; `stream` drops each result as it arrives, so its
//! peak is what the batch itself holds: K futures and the gate, whatever N is.

use futures_util::StreamExt;
use llm_retry_runtime::{ApiError, Backoff, Policy, RetryExt, http::RetryAfter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

const K: usize = 64;

/// One attempt. The input carries the item's index and whether it has been tried: it is
/// created when the batch takes the item and freed when the item finishes.
async fn op((i, tried): (usize, Arc<AtomicBool>)) -> Result<u64, ApiError> {
    let first = !tried.swap(true, Relaxed);
    tokio::time::sleep(Duration::from_millis(1 + (i % 7) as u64)).await;
    match (i, first) {
        (5_000, true) => Err(ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(1)))),
        (i, true) if i % 100 == 99 => Err(ApiError::from_status(503)),
        _ => Ok(i as u64),
    }
}

fn inputs(n: usize) -> impl Iterator<Item = (usize, Arc<AtomicBool>)> {
    (0..n).map(|i| (i, Arc::new(AtomicBool::new(false))))
}

fn bench(n: usize, keep_results: bool) -> (Duration, u64, Duration, usize) {
    let policy = Policy::builder().backoff(Backoff::Fixed { delay: Duration::from_millis(50) }).build().unwrap();
    let batch = policy.batch().concurrency(K).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let mut wall = Duration::ZERO;
    let mut paused = Duration::ZERO;
    let mut ok = 0;
    let info = allocation_counter::measure(|| {
        let started = Instant::now();
        rt.block_on(async {
            let t0 = tokio::time::Instant::now();
            if keep_results {
                let results = batch.run(inputs(n), op).await;
                ok = results.iter().filter(|r| r.is_ok()).count();
            } else {
                ok = batch.stream(inputs(n), op).filter(|r| std::future::ready(r.is_ok())).count().await;
            }
            paused = t0.elapsed();
        });
        wall = started.elapsed();
    });
    (wall, info.bytes_max, paused, ok)
}

fn main() {
    println!(
        "K = {K}; item type: ItemResult<u64, ApiError> = {} bytes",
        size_of::<llm_retry_runtime::batch::ItemResult<u64, ApiError>>()
    );
    println!("{:>8}  {:>7}  {:>10}  {:>12}  {:>12}", "N", "mode", "wall", "paused time", "peak heap");
    for n in [10_000, 100_000] {
        for keep in [false, true] {
            let (wall, peak, paused, ok) = bench(n, keep);
            assert_eq!(ok, n);
            println!(
                "{n:>8}  {:>7}  {:>8.0?}  {:>11.2?}  {:>9.1} KiB",
                if keep { "run" } else { "stream" },
                wall,
                paused,
                peak as f64 / 1024.0
            );
        }
    }
}
