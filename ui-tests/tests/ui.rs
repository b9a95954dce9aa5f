//! Compile-fail tests of `#[llm_retry]` (the compile-pass cases are tests/pass, an ordinary test
//! binary: with no pass case, trybuild only runs `cargo check`).
//!
//! The `.stderr` files were produced by rustc 1.95.0 (59807616e 2026-04-14), stable.
//! Regenerate them with `TRYBUILD=overwrite cargo test -p llm-retry-ui-tests`, then read every one:
//! each message must land on the offending token and name the fix.
//!
//! One file per misconfiguration, in a folder per category of `tests/ui/fail/`: `keys` (unknown,
//! duplicate, mistyped or out-of-range keys), `durations`, `backoff` (and jitter), `on` (kinds and
//! statuses), `rules`, `hooks`, `limits` (limiter, budget, adaptive), `policy` (a policy loaded at startup), `fallback` (chains and `move_on`), `stream`, `item` (what the
//! attribute is put on: not an async fn, no `Result`, an error type that says nothing), `body` (what the body does: moved
//! arguments, dead code).

/// Set by `cargo clippy`, and by CI, which lints while the tests build (.ci/run).
const WRAPPER: &str = "RUSTC_WORKSPACE_WRAPPER";

#[test]
fn ui() {
    // trybuild's cargo would inherit clippy-driver as the wrapper and add clippy's lints to
    // every case's output: the cases run in a child of this test, without it.
    if std::env::var_os(WRAPPER).is_some() {
        let this = std::env::current_exe().expect("the test binary's path");
        let status = std::process::Command::new(this)
            .args(["ui", "--exact", "--nocapture", "--test-threads=1"])
            .env_remove(WRAPPER)
            .env_remove("CLIPPY_ARGS")
            .status()
            .expect("the test binary runs again");
        assert!(status.success(), "the compile-fail cases (above)");
        return;
    }
    // One run at a time: trybuild writes its project into target/tests/trybuild, and two runs
    // at once (two terminals, or CI warming trybuild's build in the background, .ci/run) would
    // write over each other's files. The lock is released when the process ends, however it ends.
    let lock = std::fs::File::create(concat!(env!("CARGO_TARGET_TMPDIR"), "/ui.lock")).expect("the lock file");
    lock.lock().expect("the lock on target/tmp/ui.lock");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*/*.rs");
    // trybuild runs the cases when `t` is dropped: while the lock is held.
    drop(t);
    drop(lock);
}
