use futures::stream::{self, Iter};
use llm_retry::failover::Target;
use llm_retry::{ApiError, llm_retry};

static GPT4O: Target = Target::new("gpt-4o");
static CLAUDE: Target = Target::new("claude");

#[llm_retry(stream = "restart", fallback = [GPT4O, CLAUDE])]
async fn chat(prompt: &str) -> Result<Iter<std::vec::IntoIter<Result<String, ApiError>>>, ApiError> {
    Ok(stream::iter(vec![Ok(prompt.to_owned())]))
}

fn main() {}
