//! One annotated fn, to read its expansion: `cargo expand --example expand`.
//! Run it: `cargo run --example expand`.

use llm_retry::{ApiError, llm_retry};

struct Client;

impl Client {
    #[llm_retry(max = 5, on = [RateLimited, Overloaded, 503], rule(RateLimited, max = 3, backoff = "fixed", delay = "60s"))]
    async fn chat(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(format!("echo: {prompt}"))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("{}", Client.chat("hello").await.unwrap());
}
