//! Instructions per call on the success path, counted by callgrind (repeatable, unlike times):
//! one variant, `calls` times, inside one `block_on`, in a boxed future as in `overhead`.
//!
//! ```sh
//! cargo bench --bench instructions --no-run   # prints the binary's path, BIN below
//! valgrind --tool=callgrind BIN llm_retry 100000
//! valgrind --tool=callgrind BIN llm_retry 200000
//! ```
//!
//! The difference between the two totals, divided by 100,000, is the cost of one call without
//! the process's start-up. Variants: `direct`, `llm_retry`, `hand_written` (in place) and
//! `hand_written_helper`; and the builder API, `builder` (`Policy::DEFAULT.retry`, no stats
//! site) and `builder_pacer` (the same through an endpoint's `Limiter`, never throttled and
//! with no configured rate: the first 1,024 calls pass its slow start, the rest find it open).
//! Each is called from one place here, so each is inlined into the loop.

#[allow(dead_code)] // the yielding variants are timed by `overhead` only
mod variants;

use llm_retry::{Limiter, Policy, RetryExt};
use std::hint::black_box;
use variants::{annotated_ready, hand_written, hand_written_ready, ready};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (Some(variant), Some(calls)) = (args.first(), args.get(1).and_then(|n| n.parse::<u64>().ok())) else {
        // `cargo bench` runs every bench target with no arguments: nothing to count then.
        eprintln!("usage: instructions <{}> <calls>", VARIANTS.map(|v| v.0).join("|"));
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    match VARIANTS.iter().find(|v| v.0 == variant) {
        Some((_, count)) => count(&rt, calls),
        None => eprintln!("unknown variant {variant}: {}", VARIANTS.map(|v| v.0).join(", ")),
    }
}

/// Each variant's loop in a fn of its own, never inlined into `main`: how the compiler lays
/// out one loop then does not depend on the others (with the builder's loops beside it in
/// `main`, the annotated fn's loop took two more stores of the harness's own state).
type Count = fn(&tokio::runtime::Runtime, u64);

macro_rules! count {
    ($call:expr) => {{
        #[inline(never)]
        fn count(rt: &tokio::runtime::Runtime, calls: u64) {
            rt.block_on(Box::pin(async {
                for i in 0..calls {
                    black_box($call(i).await.unwrap());
                }
            }))
        }
        count as Count
    }};
}

static PACER: Limiter = Limiter::new("instructions");

const VARIANTS: [(&str, Count); 6] = [
    ("direct", count!(ready)),
    ("llm_retry", count!(annotated_ready)),
    ("hand_written", count!(hand_written_ready)),
    ("hand_written_helper", count!(|i| hand_written(move || ready(i)))),
    ("builder", count!(|i| Policy::DEFAULT.retry(move || ready(i)))),
    ("builder_pacer", count!(|i| Policy::DEFAULT.call().limiter(&PACER).retry(move || ready(i)))),
];
