use llm_retry::{ApiError, llm_retry};

async fn send(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

#[llm_retry(max = 3)]
async fn chat(prompt: String) -> Result<String, ApiError> {
    // Each attempt runs the body again, so it may only borrow `prompt`; clone to send it.
    send(prompt).await
}

fn main() {
    drop(chat(String::new()));
}
