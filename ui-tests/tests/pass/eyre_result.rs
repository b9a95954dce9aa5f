//! `eyre::Result` (feature `eyre`): classified by the errors in its chain; `From<Timeout>`
//! and `From<InvalidOutput>` (for `deadline`, `attempt_timeout`, `validate`) are eyre's own.
use eyre::WrapErr;
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
async fn chat(prompt: &str) -> eyre::Result<String> {
    let text = fetch(prompt).await.wrap_err("calling the model")?;
    eyre::ensure!(text.len() < 10_000, "the reply is too long");
    Ok(text)
}

#[llm_retry(max = 2)]
async fn chat_plain(prompt: &str) -> Result<String, eyre::Report> {
    Ok(fetch(prompt).await?)
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(chat_plain("hi"));
}
