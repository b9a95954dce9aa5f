use llm_retry::{ApiError, Policy, config::PolicySlot, llm_retry};

static CHAT_POLICY: PolicySlot = PolicySlot::new("chat", Policy::DEFAULT);

#[llm_retry(policy = CHAT_POLICY, max = 5, backoff = "fixed")]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {
    drop(chat("hi"));
}
