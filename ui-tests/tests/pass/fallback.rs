//! `fallback = [...]`: a chain of `static Target`s (one behind a breaker, one through a module
//! path), the target parameter anywhere in the signature and named as the user likes, `move_on`,
//! and the call's own options beside it, a stream along the chain; callers do not pass the
//! target.
#![deny(warnings, unused_qualifications)]

use llm_retry::failover::{Breaker, Target};
use llm_retry::{ApiError, llm_retry};

static GPT4O_BREAKER: Breaker = Breaker::new("gpt-4o");
static GPT4O: Target = Target::new("gpt-4o").breaker(&GPT4O_BREAKER);

mod models {
    pub static CLAUDE: llm_retry::failover::Target = llm_retry::failover::Target::new("claude");
}

#[llm_retry(fallback = [GPT4O, models::CLAUDE], move_on = [Auth, BadRequest], max = 3, deadline = "2m")]
async fn chat(prompt: &str, target: &Target) -> Result<String, ApiError> {
    Ok(format!("{prompt} via {}", target.name()))
}

/// A stream along the chain, its target and `Resume` both supplied.
#[llm_retry(stream = "continue", fallback = [GPT4O, models::CLAUDE])]
async fn stream_chat(
    target: &Target,
    prompt: &str,
    resume: llm_retry::stream::Resume,
) -> Result<futures::stream::Iter<std::vec::IntoIter<Result<String, ApiError>>>, ApiError> {
    Ok(futures::stream::iter(vec![Ok(format!("{}{prompt} via {}", resume.text(), target.name()))]))
}

struct Client;

impl Client {
    #[llm_retry(fallback = [models::CLAUDE])]
    async fn ask(&self, model: &'static Target, prompt: String) -> Result<String, ApiError> {
        Ok(format!("{prompt} via {}", model.name()))
    }
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(Client.ask("hi".to_owned()));
    drop(stream_chat("hi"));
}
