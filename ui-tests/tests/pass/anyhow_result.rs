//! `anyhow::Result` (feature `anyhow`): classified by the errors in its chain; `From<Timeout>`
//! and `From<InvalidOutput>` (for `deadline`, `attempt_timeout`, `validate`) are anyhow's own.
use anyhow::Context;
use llm_retry::{ApiError, InvalidOutput, llm_retry};

async fn fetch(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

// `validate` hands the check a `&String`: the plainest signature a user writes for it.
#[allow(clippy::ptr_arg)]
fn non_empty(text: &String) -> Result<(), InvalidOutput> {
    if text.is_empty() { Err(InvalidOutput::new("empty")) } else { Ok(()) }
}

#[llm_retry(max = 3, deadline = "1m", attempt_timeout = "10s", validate = non_empty)]
async fn chat(prompt: &str) -> anyhow::Result<String> {
    let text = fetch(prompt).await.context("calling the model")?;
    anyhow::ensure!(text.len() < 10_000, "the reply is too long");
    Ok(text)
}

#[llm_retry(max = 2)]
async fn chat_plain(prompt: &str) -> Result<String, anyhow::Error> {
    Ok(fetch(prompt).await?)
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(chat_plain("hi"));
}
