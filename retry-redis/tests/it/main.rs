//! The Redis store's integration tests, one module per topic, in one test binary: each test
//! binary links the whole dependency tree again (redis, rustls and aws-lc, tokio, the runtime
//! and the testkit), so one binary instead of six saves most of a clean build's link time.
//! Run one topic with its module path as the filter:
//!
//! ```sh
//! LLM_RETRY_REQUIRE_REDIS=1 cargo test -p llm-retry-redis --all-features --test it cluster::
//! ```
//!
//! Every test starts a redis-server (or a three-master cluster) of its own, on free ports in a
//! fresh directory, with stores and breakers of its own, so tests that run side by side share
//! no state; `common` is what they share in code. The timing asserts (a 25 ms command timeout
//! answered within 75 ms, a breaker's report settled within 30 ms) hold beside any other
//! file's tests as they did beside their own: as many tests run at once as before (one per
//! core by default). No file needs a process of its own.

mod breaker;
mod cluster;
mod common;
mod pacer;
mod resilience;
mod shared_breaker;
mod tls;
