//! The success path's cost: a direct call, the annotated fn, a hand-written retry loop (in
//! place in a plain async fn, and as a generic helper), and backon's `.retry()`, each with a
//! ready body and with one that yields once. Every variant
//! runs `iters` calls inside one `block_on`, so the runtime's entry cost is not measured: in a
//! boxed future (`success_path`), and for the ready body also on `block_on`'s stack
//! (`success_path_on_stack`).
//!
//! `cargo bench --bench overhead`

use backon::{ExponentialBuilder, Retryable};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use llm_retry::RetryExt;
use std::hint::black_box;
use std::time::Instant;

mod variants;

use variants::{
    annotated_ready, annotated_yielding, hand_written, hand_written_ready, hand_written_yielding, ready, yielding,
};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();

    // `$host` wraps the loop's future: `Box::pin` puts it on the heap, as a spawned task's
    // future is; `core::convert::identity` leaves it on `block_on`'s stack, as a
    // `#[tokio::main]` body is. Where it sits moves the figures by up to 2 ns (see
    // docs/PERFORMANCE.md and `benches/placement.rs`), so both are measured.
    macro_rules! case {
        ($group:ident, $host:path, $name:literal, $body:literal, $call:expr) => {
            $group.bench_function(BenchmarkId::new($name, $body), |b| {
                b.iter_custom(|iters| {
                    rt.block_on($host(async {
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

    let mut boxed = c.benchmark_group("success_path");
    case!(boxed, Box::pin, "direct", "ready", ready);
    case!(boxed, Box::pin, "llm_retry", "ready", annotated_ready);
    case!(boxed, Box::pin, "hand_written", "ready", hand_written_ready);
    case!(boxed, Box::pin, "hand_written_helper", "ready", |i| hand_written(move || ready(i)));
    // The same engine through the builder API, with no site: no stats counter.
    case!(boxed, Box::pin, "builder_no_stats", "ready", |i| llm_retry::Policy::DEFAULT.retry(move || ready(i)));
    // The same with the endpoint's pacer: never throttled, no rate configured (past its slow
    // start after the warm-up, so one relaxed load before the attempt and one after).
    static PACER: llm_retry::Limiter = llm_retry::Limiter::new("bench");
    case!(boxed, Box::pin, "builder_pacer", "ready", |i| llm_retry::Policy::DEFAULT
        .call()
        .limiter(&PACER)
        .retry(move || ready(i)));
    case!(boxed, Box::pin, "backon", "ready", |i| (move || ready(i)).retry(ExponentialBuilder::default()));
    case!(boxed, Box::pin, "direct", "yield_once", yielding);
    case!(boxed, Box::pin, "llm_retry", "yield_once", annotated_yielding);
    case!(boxed, Box::pin, "hand_written", "yield_once", hand_written_yielding);
    case!(boxed, Box::pin, "hand_written_helper", "yield_once", |i| hand_written(move || yielding(i)));
    case!(boxed, Box::pin, "backon", "yield_once", |i| (move || yielding(i)).retry(ExponentialBuilder::default()));
    boxed.finish();

    let mut on_stack = c.benchmark_group("success_path_on_stack");
    case!(on_stack, core::convert::identity, "direct", "ready", ready);
    case!(on_stack, core::convert::identity, "llm_retry", "ready", annotated_ready);
    case!(on_stack, core::convert::identity, "hand_written", "ready", hand_written_ready);
    case!(on_stack, core::convert::identity, "hand_written_helper", "ready", |i| hand_written(move || ready(i)));
    on_stack.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
