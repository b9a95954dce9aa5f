//! The chaos server's integration tests, one module per topic, in one test binary: each test
//! binary links the whole dependency tree again (tokio, hyper, reqwest), so one binary instead
//! of six saves most of a clean build's link time. Run one topic with its module path as the
//! filter:
//!
//! ```sh
//! cargo test -p llm-retry-testkit --test it rate_headers::
//! ```
//!
//! Every test starts servers of its own on free loopback ports, and shares nothing else with
//! the others, so they run side by side in one process. `common` is the raw HTTP/1.1 client
//! that `driving`, `faults` and `streams` read the wire with. No file needs a process of its
//! own.

mod common;
mod driving;
mod faults;
mod personas;
mod rate_headers;
mod reqwest_client;
mod streams;
