use llm_retry::{ApiError, llm_retry};

#[llm_retry(max = 5, on = [Timeout, RateLimited, 500, 502, 503, 504, 529], rule(Timeout, max = 2), rule(RateLimited, max = 3), rule(500, max = 2), rule(502, max = 2), rule(503, max = 2), rule(504, max = 2), rule(529, max = 2))]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
