use llm_retry::llm_retry;

#[derive(Debug)]
struct MyError;

impl llm_retry::Classify for MyError {
    fn classify(&self) -> llm_retry::Classification {
        llm_retry::Classification::new(llm_retry::ErrorKind::Connection)
    }
}

#[llm_retry(deadline = "1m")]
async fn chat(prompt: &str) -> Result<String, MyError> {
    let _ = prompt;
    Err(MyError)
}

fn main() {
    drop(chat("hi"));
}
