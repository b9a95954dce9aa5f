use llm_retry::{ApiError, llm_retry};

#[llm_retry(backoff = "fixed", delay = "0ms")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
