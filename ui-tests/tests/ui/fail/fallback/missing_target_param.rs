use llm_retry::failover::Target;
use llm_retry::{ApiError, llm_retry};

static GPT4O: Target = Target::new("gpt-4o");
static CLAUDE: Target = Target::new("claude");

#[llm_retry(fallback = [GPT4O, CLAUDE])]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
