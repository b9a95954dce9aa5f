//! `limiter = PATH`: a `static Limiter` shared by two fns, one of them through a module path.
use llm_retry::{ApiError, Limiter, llm_retry};

mod endpoints {
    pub static OPENAI: llm_retry::Limiter = llm_retry::Limiter::new("openai");
}
static ANTHROPIC: Limiter = Limiter::new("anthropic");

#[llm_retry(limiter = endpoints::OPENAI)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(limiter = ANTHROPIC, max = 2)]
async fn summarize(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(summarize("hi"));
}
