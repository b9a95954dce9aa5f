use llm_retry::{ApiError, Limiter, llm_retry};

static OPENAI: Limiter = Limiter::new("openai");

#[llm_retry(tokens = 1000)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
