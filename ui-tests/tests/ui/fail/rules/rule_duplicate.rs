use llm_retry::{ApiError, llm_retry};

#[llm_retry(rule(502, max = 2), rule(502, backoff = "fixed"))]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
