use llm_retry::{ApiError, llm_retry};

#[llm_retry(deadline = "10s", attempt_timeout = "30s")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
