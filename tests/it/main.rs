//! The facade's integration tests, one module per topic, in one test binary: each binary
//! links reqwest, hyper and async-openai again, so one binary instead of fifteen saves most of
//! a clean build's link time. Run one topic with its module path as the filter:
//!
//! ```sh
//! cargo test --test it cancellation --all-features
//! ```
//!
//! Every test here shares one process with the others, and may run at the same time as any of
//! them. The stats registry is process-wide: every site (`name = "..."`, `static Site`) needs a
//! name no other module uses, and a test reads only its own sites. Two tests need the process
//! to themselves and keep a binary of their own: `tests/secrets.rs` (it installs a global
//! tracing subscriber at TRACE), `tests/load.rs` (it measures the process's resident memory) and
//! `tests/fleet.rs` (its worker processes would load the machine under the soak test).
//! See their module docs.

mod any_error;
mod attribute_behaviour;
mod attribute_fallback;
mod attribute_future;
mod attribute_limits;
mod attribute_policy;
mod attribute_stream;
mod batch_e2e;
mod cancellation;
mod config;
mod e2e_async_openai;
mod e2e_reqwest;
mod expand_lints;
mod failover_tcp;
mod limiter_tcp;
mod providers_e2e;
mod simulation_smoke;
mod soak;
mod stream_e2e;
mod support;
