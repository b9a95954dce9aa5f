use futures::Stream;
use llm_retry::{ApiError, stream::Resume, llm_retry};

#[llm_retry(stream = "contine")]
async fn chat(prompt: &str, resume: Resume) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(futures::stream::iter([Ok(format!("{prompt}{}", resume.text()))]))
}

fn main() {
    drop(chat("hi"));
}
