use llm_retry::llm_retry;

#[llm_retry]
async fn chat(prompt: &str) -> String {
    prompt.to_owned()
}

fn main() {
    drop(chat("hi"));
}
