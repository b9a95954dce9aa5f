//! `Box<dyn Error + Send + Sync>` (and `+ Send`, and bare): classified by the errors in its
//! chain; `From<Timeout>` and `From<InvalidOutput>` (for `deadline`, `attempt_timeout`,
//! `validate`) are std's `From<E: Error>`.
use llm_retry::{ApiError, InvalidOutput, llm_retry};
use std::error::Error;

async fn fetch(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

// `validate` hands the check a `&String`: the plainest signature a user writes for it.
#[allow(clippy::ptr_arg)]
fn non_empty(text: &String) -> Result<(), InvalidOutput> {
    if text.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
}

#[llm_retry(max = 3, deadline = "1m", attempt_timeout = "10s", validate = non_empty)]
async fn chat(prompt: &str) -> Result<String, Box<dyn Error + Send + Sync>> {
    let text = fetch(prompt).await?;
    if text.len() > 10_000 {
        return Err("the reply is too long".into());
    }
    Ok(text)
}

#[llm_retry(max = 2)]
async fn chat_send(prompt: &str) -> Result<String, Box<dyn Error + Send>> {
    // std has no `From<E: Error>` for this form: box by hand.
    fetch(prompt).await.map_err(|e| Box::new(e) as Box<dyn Error + Send>)
}

#[llm_retry(max = 2)]
async fn chat_bare(prompt: &str) -> Result<String, Box<dyn Error>> {
    Ok(fetch(prompt).await?)
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(chat_send("hi"));
    drop(chat_bare("hi"));
}
