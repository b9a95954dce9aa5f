use futures::Stream;
use llm_retry::{ApiError, llm_retry};

/// A request body that is not `Clone`.
struct Request {
    prompt: String,
}

#[llm_retry(stream = "restart")]
async fn chat(request: Request) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    Ok(futures::stream::iter([Ok(request.prompt)]))
}

fn main() {
    drop(chat(Request { prompt: "hi".into() }));
}
