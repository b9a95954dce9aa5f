//! A Redis store for `llm-retry`: a fleet of worker processes shares each endpoint's pacer
//! (its request and token rates, pauses, in-flight cap and the rate it learns from throttles)
//! and each target's circuit breaker (with exactly one half-open probe fleet-wide).
//!
//! [`RedisStore`] implements the runtime's
//! [`Store`](llm_retry_runtime::store::Store): hand it to a limiter or a breaker at startup
//! and every worker paces against the same state. Each admission is one round trip (one Lua
//! script run atomically on the server, on the server's clock), bounded by a 25 ms command
//! timeout; when Redis is slow or down the runtime paces locally until it answers again.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), llm_retry_runtime::store::StoreError> {
//! use llm_retry_redis::RedisStore;
//! use llm_retry_runtime::store::{Admission, Ask, Report, Store, Tuning};
//! use std::time::Duration;
//!
//! let store = RedisStore::builder("redis://127.0.0.1:6379").prefix("my-app").connect().await?;
//! let mut tuning = Tuning::DEFAULT;
//! tuning.requests_per_second = Some(50.0);
//! let ask = Ask { endpoint: "openai", worker: 7, tokens: 800.0, max_wait: Some(Duration::from_secs(10)), lease: None, tuning };
//! match store.admit(&ask).await? {
//!     Admission::Go { wait, .. } => tokio::time::sleep(wait).await, // then send
//!     Admission::Refused { wait } => println!("would wait {wait:?}: past the deadline"),
//!     Admission::Busy { retry_in, .. } => tokio::time::sleep(retry_in).await,
//!     _ => {}
//! }
//! // A 429 with Retry-After: 2 holds every worker for 2 s.
//! store.report("openai", Report::Throttle { retry_after: Some(Duration::from_secs(2)), tuning }).await?;
//! # Ok(()) }
//! ```
//!
//! # Keys
//!
//! Each endpoint's keys share one hash tag, so each script touches one cluster slot:
//! `{<prefix>:<endpoint>}:p` (the pacer's hash), `:l` (in-flight leases), `:n` (the lease
//! counter) and `:w` (the workers' heartbeats); a breaker is the hash `{<prefix>:b:<name>}`.
//! Names are escaped (`%`, `{`, `}`, control and non-ASCII bytes become `%XX`). Every write
//! sets a TTL (the pacer's hash lives 10 minutes past its last touch, heartbeats 60 s, leases
//! as long as the longest lease), so a dead fleet leaves nothing that holds the next one. A
//! corrupted hash (garbage in its fields, or a key of the wrong type) counts as no state.
//!
//! # Redis Cluster and managed Redis
//!
//! [`RedisStore::builder_cluster`] takes the URLs of some of a cluster's nodes (a managed
//! service's configuration endpoint is one): the store learns the slot map, sends each call to
//! the node that serves its hash tag, and follows MOVED replies and topology changes. An
//! endpoint's state lives whole on one node; a node that is down or stopped fails its own
//! endpoints' calls within the command timeout (and the runtime paces them locally), never the
//! other nodes' endpoints.
//!
//! `rediss://` URLs (TLS, which managed services require) need the `tls` feature: rustls,
//! trusting the system's root certificates, Mozilla's with `tls-webpki-roots`, or a private
//! CA given to `RedisStoreBuilder::tls_root_certificates`. The server's name must match its
//! certificate. If the process has not installed a rustls crypto provider, connecting with TLS
//! installs aws-lc-rs.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), llm_retry_runtime::store::StoreError> {
//! // With the `tls` feature:
//! let store = llm_retry_redis::RedisStore::builder_cluster(["rediss://:token@clustercfg.my-cache.example.com:6379"])
//!     .connect()
//!     .await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! # Minimum Rust version
//!
//! 1.88 (the `redis` crate's), above the 1.85 of the rest of `llm-retry`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod breaker;
mod connection;
mod error;
mod keys;
mod pacer;
mod reply;
mod store;

pub use store::{RedisStore, RedisStoreBuilder};
