//! Arbitrary Retry-After and rate-limit header values on a 429, through classification and the
//! engine's retry decision. See docs/RELIABILITY.md for how to run it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llm_retry_fuzz::retry_after(data));
