use llm_retry::llm_retry;

#[llm_retry(max = 3)]
async fn send(prompt: &str) {
    let _ = prompt;
}

fn main() {
    drop(send("hi"));
}
