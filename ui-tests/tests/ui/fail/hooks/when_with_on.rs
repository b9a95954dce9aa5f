use llm_retry::{ApiError, llm_retry};

#[llm_retry(on = [RateLimited], when = is_transient)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn is_transient(_: &ApiError) -> bool {
    true
}

fn main() {
    drop(chat("hi"));
}
