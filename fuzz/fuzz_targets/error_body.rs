//! Arbitrary bytes as an HTTP error response (status and body), raw and inside OpenAI and
//! Anthropic error shapes. See docs/RELIABILITY.md for how to run it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llm_retry_fuzz::error_body(data));
