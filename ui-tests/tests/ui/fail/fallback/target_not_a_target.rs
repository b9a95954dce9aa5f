use llm_retry::failover::Target;
use llm_retry::{ApiError, Limiter, llm_retry};

static OPENAI: Limiter = Limiter::new("openai");
static CLAUDE: Target = Target::new("claude");

#[llm_retry(fallback = [OPENAI, CLAUDE])]
async fn chat(target: &Target) -> Result<String, ApiError> {
    Ok(target.name().to_owned())
}

fn main() {}
