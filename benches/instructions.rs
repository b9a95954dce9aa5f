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
//! `hand_written_helper`. Each is called from one place here, so each is inlined into the loop.

#[allow(dead_code)] // the yielding variants are timed by `overhead` only
mod variants;

use std::hint::black_box;
use variants::{annotated_ready, hand_written, hand_written_ready, ready};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let (Some(variant), Some(calls)) = (args.first(), args.get(1).and_then(|n| n.parse::<u64>().ok())) else {
        // `cargo bench` runs every bench target with no arguments: nothing to count then.
        eprintln!("usage: instructions <direct|llm_retry|hand_written|hand_written_helper> <calls>");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    macro_rules! count {
        ($call:expr) => {
            rt.block_on(Box::pin(async {
                for i in 0..calls {
                    black_box($call(i).await.unwrap());
                }
            }))
        };
    }
    match variant.as_str() {
        "direct" => count!(ready),
        "llm_retry" => count!(annotated_ready),
        "hand_written" => count!(hand_written_ready),
        "hand_written_helper" => count!(|i| hand_written(move || ready(i))),
        other => eprintln!("unknown variant {other}: direct, llm_retry, hand_written or hand_written_helper"),
    }
}
