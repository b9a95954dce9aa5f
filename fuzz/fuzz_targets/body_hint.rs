//! Arbitrary text as a provider's error message: the retry hint written in it ("try again in 6s",
//! "retry after 6 seconds", Gemini's `retryDelay`), through classification and the engine's retry
//! decision. See docs/RELIABILITY.md for how to run it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llm_retry_fuzz::body_hint(data));
