use llm_retry::failover::Target;
use llm_retry::{ApiError, llm_retry};

static GPT4O: Target = Target::new("gpt-4o");
static CLAUDE: Target = Target::new("claude");

#[llm_retry(fallback = GPT4O)]
async fn chat(target: &Target) -> Result<String, ApiError> {
    Ok(target.name().to_owned())
}

fn main() {}
