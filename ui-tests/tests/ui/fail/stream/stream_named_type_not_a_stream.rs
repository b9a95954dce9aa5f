use llm_retry::{ApiError, llm_retry};

/// Not a stream: a response that still has to be read.
struct Response;

#[llm_retry(stream = "restart")]
async fn chat(_prompt: &str) -> Result<Response, ApiError> {
    Ok(Response)
}

fn main() {
    drop(chat("hi"));
}
