//! `stream = ...` with `limiter` and `tokens`: the endpoint's pacer paces a stream's attempts as
//! it paces any other call's.
use futures::stream::{self, Iter};
use llm_retry::{ApiError, Limiter, llm_retry};

static OPENAI: Limiter = Limiter::new("openai");

#[llm_retry(stream = "restart", limiter = OPENAI, tokens = prompt.len() as u64 / 4 + 256)]
async fn chat(prompt: &str) -> Result<Iter<std::vec::IntoIter<Result<String, ApiError>>>, ApiError> {
    Ok(stream::iter(vec![Ok(prompt.to_owned())]))
}

#[test]
fn compiles() {
    drop(chat("hi"));
}
