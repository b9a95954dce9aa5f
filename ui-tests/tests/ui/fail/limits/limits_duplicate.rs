use llm_retry::{ApiError, Budget, Limiter, llm_retry};

static OPENAI: Limiter = Limiter::new("openai");
static ANTHROPIC: Limiter = Limiter::new("anthropic");
static BUDGET: Budget = Budget::new();

#[llm_retry(limiter = OPENAI, budget = BUDGET, limiter = ANTHROPIC, adaptive = true, budget = BUDGET, adaptive = false)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    let _ = (&OPENAI, &ANTHROPIC, &BUDGET);
    drop(chat("hi"));
}
