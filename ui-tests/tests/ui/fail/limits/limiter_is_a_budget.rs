use llm_retry::{ApiError, Budget, llm_retry};

static OPENAI_BUDGET: Budget = Budget::new();

#[llm_retry(limiter = OPENAI_BUDGET)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
