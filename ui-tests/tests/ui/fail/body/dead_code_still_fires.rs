#![deny(dead_code)]

use llm_retry::{ApiError, llm_retry};

#[llm_retry(max = 3)]
async fn never_called(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
