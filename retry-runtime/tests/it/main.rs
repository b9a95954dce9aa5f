//! The runtime's integration tests, one module per topic, in one test binary: each test binary
//! links the whole dependency tree again (tokio, reqwest, async-openai, proptest, the metrics
//! exporter), so one binary instead of twenty saves most of a clean build's link time.
//! Run one topic with its module path as the filter:
//!
//! ```sh
//! cargo test -p llm-retry-runtime --all-features --test it budget::
//! ```
//!
//! Every test here shares one process with the others, and may run at the same time as any of
//! them. The stats registry is process-wide: every site (`Site::new("...")`) needs a name no
//! other module uses, and a test reads only its own sites (`engine` looks its site up by name
//! in `stats()`, `budget` reads its site's row of the table, `metrics` its own site's and
//! limiter's lines of the export). The metrics recorder is a local one
//! (`with_local_recorder`), and the one tracing subscriber is set for its test's thread only
//! (`with_default`, in `budget::an_empty_budget_gives_up_at_once_and_says_why`).
//!
//! Proptest keeps the seeds of past failures in `tests/proptest-regressions/<module>.txt`:
//! for a source file under a directory with a `main.rs`, that is where it reads and writes
//! them (`pacer.txt` holds `pacer`'s).
//!
//! Two files keep a binary of their own:
//!
//! - `tests/alloc.rs` asserts exact allocation counts of whole calls, retries and their
//!   tracing events included (none on a success, exactly one box per error and per pause), and
//!   runs alone so that nothing else in the process can touch what it counts. (`stream` and
//!   `stream_failover` also measure allocations, of a stream's success path only, which emits
//!   no event and registers nothing after its warm-up.)
//! - `tests/events.rs` asserts on every event a call emits, through a subscriber set for its
//!   thread. tracing-core caches each callsite's interest for the whole process, and a
//!   callsite first reached on a thread without a subscriber while one scoped subscriber is
//!   the only one in the process is cached as wanted by none, that one included. Alone, both
//!   of its tests have subscribers; beside the other modules, which reach the engine's
//!   `retrying` and `giving up` callsites on threads of their own, it lost events 6 times in
//!   40 runs at 32 threads.
//!
//!
//! So the events of every case, budget give-ups included, are asserted there, not here.

mod adaptive;
mod backoff_props;
mod batch;
mod batch_failover;
mod budget;
mod bulkhead;
mod classify;
mod controls;
mod engine;
mod failover;
mod hostile;
mod limiter;
mod metrics;
mod pacer;
mod providers;
mod retry_after;
mod secrets_props;
mod store;
mod stream;
mod stream_failover;
mod waiters;
