use llm_retry::{ApiError, llm_retry};

async fn send(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

#[llm_retry(max = 3)]
async fn chat(prompt: String) -> Result<String, ApiError> {
    // With a `?`, the body runs in an async block of its own, which captures `prompt`.
    let reply = send(prompt).await?;
    Ok(reply)
}

fn main() {
    drop(chat(String::new()));
}
