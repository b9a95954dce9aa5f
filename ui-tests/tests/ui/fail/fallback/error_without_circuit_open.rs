use llm_retry::failover::Target;
use llm_retry::{Classification, Classify, ErrorKind, llm_retry};

static GPT4O: Target = Target::new("gpt-4o");

#[derive(Debug)]
struct MyError;

impl Classify for MyError {
    fn classify(&self) -> Classification {
        Classification::new(ErrorKind::Server)
    }
}

// Every breaker may refuse a call before any attempt: the error type must say so.
#[llm_retry(fallback = [GPT4O])]
async fn chat(target: &Target) -> Result<String, MyError> {
    Ok(target.name().to_owned())
}

fn main() {}
