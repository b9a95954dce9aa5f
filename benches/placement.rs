//! How the success path's speed depends on where the caller's future sits: the annotated fn
//! and the hand-written loop, each run with its future on `block_on`'s stack, shifted by 0 to
//! 112 bytes in 16-byte steps. Run it under `setarch -R`, so the stack starts at the same
//! address every time and only the shift moves it:
//!
//! ```sh
//! cargo bench --bench placement --no-run   # prints the binary's path, BIN below
//! setarch -R BIN 5000000
//! ```
//!
//! Each variant's future sits inside the loop's, on the stack: the figures are those of
//! `success_path_on_stack` in `overhead`, at eight placements.

#[allow(dead_code)] // the yielding variants are timed by `overhead` only
mod variants;

use std::hint::black_box;
use std::time::Instant;
use variants::{annotated_ready, hand_written, hand_written_ready, ready};

/// One placement's run: ns per call of the annotated fn, the hand loop in place, and the
/// hand loop as a generic helper.
type Run = fn(&tokio::runtime::Runtime, u64) -> [f64; 3];

/// Runs `calls` calls of each variant with `SHIFT` more bytes of stack above `block_on`.
#[inline(never)]
fn at_shift<const SHIFT: usize>(rt: &tokio::runtime::Runtime, calls: u64) -> [f64; 3] {
    let pad = black_box([0u8; SHIFT]);
    let per_call = |start: Instant| start.elapsed().as_nanos() as f64 / calls as f64;
    let annotated = rt.block_on(async {
        let start = Instant::now();
        for i in 0..calls {
            black_box(annotated_ready(i).await.unwrap());
        }
        per_call(start)
    });
    let in_place = rt.block_on(async {
        let start = Instant::now();
        for i in 0..calls {
            black_box(hand_written_ready(i).await.unwrap());
        }
        per_call(start)
    });
    let helper = rt.block_on(async {
        let start = Instant::now();
        for i in 0..calls {
            black_box(hand_written(move || ready(i)).await.unwrap());
        }
        per_call(start)
    });
    black_box(&pad);
    [annotated, in_place, helper]
}

fn main() {
    // `cargo bench` runs every bench target with no arguments: nothing to measure then.
    let Some(calls) = std::env::args().skip(1).find_map(|a| a.parse::<u64>().ok()) else {
        eprintln!("usage: placement <calls>   (under `setarch -R`)");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let runs: [(usize, Run); 8] = [
        (0, at_shift::<0>),
        (16, at_shift::<16>),
        (32, at_shift::<32>),
        (48, at_shift::<48>),
        (64, at_shift::<64>),
        (80, at_shift::<80>),
        (96, at_shift::<96>),
        (112, at_shift::<112>),
    ];
    // One warm-up pass: the site registers and the thread gets its stats block.
    at_shift::<0>(&rt, calls.min(1000));
    println!("shift   #[llm_retry]   hand loop in place   hand loop helper   (ns per call, best of 3)");
    for (shift, run) in runs {
        let best = (0..3).map(|_| run(&rt, calls)).fold([f64::MAX; 3], |b, r| std::array::from_fn(|i| b[i].min(r[i])));
        println!("{shift:>5}   {:>12.2}   {:>18.2}   {:>16.2}", best[0], best[1], best[2]);
    }
}
