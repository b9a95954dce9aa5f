// A syntax error in the body is rustc's to report, at the user's token: the attribute checks
// the signature only, and adds no error of its own (such as "goes on an async fn").
use llm_retry::{ApiError, llm_retry};

#[llm_retry(max = 3)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    let reply = ;
    Ok(format!("{prompt}{reply}"))
}

fn main() {
    drop(chat("hi"));
}
