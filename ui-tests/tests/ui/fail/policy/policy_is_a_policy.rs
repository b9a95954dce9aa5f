use llm_retry::{ApiError, Policy, llm_retry};

// A plain `Policy` is what the attribute's own keys make; `policy = ...` takes a `PolicySlot`.
static CHAT_POLICY: Policy = Policy::DEFAULT;

#[llm_retry(policy = CHAT_POLICY)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
