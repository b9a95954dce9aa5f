//! `budget = PATH`: a `static Budget`, built with the builder in a `static`.
use llm_retry::{ApiError, Budget, llm_retry};

static OPENAI_BUDGET: Budget = match Budget::builder().ratio(0.05).burst(10).build() {
    Ok(b) => b,
    Err(e) => panic!("{}", e.message()),
};

#[llm_retry(budget = OPENAI_BUDGET, deadline = "30s")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[test]
fn compiles() {
    drop(chat("hi"));
}
