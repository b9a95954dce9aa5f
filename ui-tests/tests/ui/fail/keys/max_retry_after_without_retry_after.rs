use llm_retry::{ApiError, llm_retry};

#[llm_retry(retry_after = false, max_retry_after = "1m")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
