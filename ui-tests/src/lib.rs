//! The `#[llm_retry]` attribute's compile tests: the modules of `tests/pass` compile (an
//! ordinary test binary), and each file of `tests/ui/fail/<category>/` is one misconfiguration
//! with the error it must give (its `.stderr`, checked by trybuild). Run them with `cargo test -p llm-retry-ui-tests`.
#![forbid(unsafe_code)]
