use llm_retry::failover::Target;
use llm_retry::{ApiError, llm_retry};

static GPT4O: Target = Target::new("gpt-4o");
static CLAUDE: Target = Target::new("claude");

#[llm_retry(stream = "restart", fallback = [GPT4O, CLAUDE])]
async fn chat(target: &Target) -> Result<futures::stream::Empty<Result<String, ApiError>>, ApiError> {
    let _ = target;
    Ok(futures::stream::empty())
}

fn main() {}
