use llm_retry::{ApiError, llm_retry};

#[llm_retry(max = 3)]
fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    let _ = chat("hi");
}
