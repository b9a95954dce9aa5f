use llm_retry::{ApiError, llm_retry};

async fn consume(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

async fn send(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(max = 3)]
async fn chat(prompt: String) -> Result<String, ApiError> {
    // A rebinding at the top of the body is part of the body: it runs every attempt, so it
    // moves `prompt` every attempt. Clone it: `let p = prompt.clone();`.
    let p = prompt;
    consume(p).await
}

#[llm_retry(max = 3)]
async fn chat_briefly(prompt: String) -> Result<String, ApiError> {
    // The same under the same name: `let mut prompt = prompt;` binds afresh every attempt (so
    // no retry sees the previous attempt's edit), and so it moves `prompt` every attempt.
    let mut prompt = prompt;
    prompt.push_str(" Answer briefly.");
    send(&prompt).await
}

fn main() {
    drop(chat(String::new()));
    drop(chat_briefly(String::new()));
}
