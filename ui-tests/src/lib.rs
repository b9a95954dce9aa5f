//! The `#[llm_retry]` attribute's trybuild cases: `tests/ui/pass` compile, and each file of
//! `tests/ui/fail/<category>/` is one misconfiguration with the error it must give
//! (its `.stderr`). Run them with `cargo test -p llm-retry-ui-tests`.
#![forbid(unsafe_code)]
