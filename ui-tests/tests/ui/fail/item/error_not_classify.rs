use llm_retry::llm_retry;

#[derive(Debug)]
struct MyError;

#[llm_retry(max = 3)]
async fn chat(prompt: &str) -> Result<String, MyError> {
    let _ = prompt;
    Err(MyError)
}

fn main() {
    drop(chat("hi"));
}
