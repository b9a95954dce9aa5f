use futures::Stream;
use llm_retry::{ApiError, llm_retry};

#[llm_retry(stream = "continue")]
async fn chat(prompt: &str) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(futures::stream::iter([Ok(prompt.to_owned())]))
}

fn main() {
    drop(chat("hi"));
}
