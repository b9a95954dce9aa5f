//! The success path's cost: a direct call, the annotated fn, a hand-written retry loop, and
//! backon's `.retry()`, each with a ready body and with one that yields once. Every variant
//! runs `iters` calls inside one `block_on`, so the runtime's entry cost is not measured.
//!
//! `cargo bench --bench overhead`

use backon::{ExponentialBuilder, Retryable};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Instant;

mod variants;

use variants::{annotated_ready, annotated_yielding, hand_written, ready, yielding};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let mut group = c.benchmark_group("success_path");

    macro_rules! case {
        ($name:literal, $body:literal, $call:expr) => {
            group.bench_function(BenchmarkId::new($name, $body), |b| {
                b.iter_custom(|iters| {
                    // Boxed, as a spawned task's future is. On `block_on`'s stack the loop's
                    // state sat at a fixed distance from the bodies' stack slots, and one
                    // variant ran about 1.5 ns slower in every run while the same code in
                    // another binary did not (by all signs, 4 KiB aliasing between the two).
                    rt.block_on(Box::pin(async {
                        let start = Instant::now();
                        for i in 0..iters {
                            black_box($call(i).await.unwrap());
                        }
                        start.elapsed()
                    }))
                })
            });
        };
    }

    case!("direct", "ready", ready);
    case!("llm_retry", "ready", annotated_ready);
    case!("hand_written", "ready", |i| hand_written(move || ready(i)));
    // The same engine through the builder API, with no site: no stats counter.
    case!("builder_no_stats", "ready", |i| llm_retry::Policy::DEFAULT.retry(move || ready(i)));
    case!("backon", "ready", |i| (move || ready(i)).retry(ExponentialBuilder::default()));
    case!("direct", "yield_once", yielding);
    case!("llm_retry", "yield_once", annotated_yielding);
    case!("hand_written", "yield_once", |i| hand_written(move || yielding(i)));
    case!("backon", "yield_once", |i| (move || yielding(i)).retry(ExponentialBuilder::default()));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
