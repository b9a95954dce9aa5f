//! Modules named `core` and `std`, and look-alike locals, do not break the expansion:
//! every generated path is absolute and every generated local is hygienic.
#![allow(dead_code)]

mod core {}
mod std {}

struct Result;
struct Duration;

use llm_retry::{ApiError, llm_retry};

#[llm_retry(max = 3, deadline = "1m", on = [RateLimited, 503], rule(503, max = 2))]
async fn chat(prompt: &str) -> ::core::result::Result<::std::string::String, ApiError> {
    let __llm_retry = 1;
    let __llm_retry_result = 2;
    let _ = (__llm_retry, __llm_retry_result);
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
}
