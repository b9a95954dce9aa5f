//! `tokens = EXPR`: the call's cost in tokens, an expression over the fn's arguments (a method
//! call on `self`, a free fn, a constant, a literal), against a limiter's tokens per minute.
#![deny(warnings, unused_qualifications)]

use llm_retry::{ApiError, Limiter, llm_retry};

static OPENAI: Limiter = match Limiter::builder("openai").tokens_per_minute(30_000.0).build() {
    Ok(c) => Limiter::from_config(c),
    Err(_) => panic!("a valid limiter"),
};
const SMALL: u64 = 200;

fn estimate(prompt: &str) -> u64 {
    prompt.len().div_ceil(4) as u64
}

#[llm_retry(limiter = OPENAI, tokens = estimate(prompt) + 512)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(limiter = OPENAI, tokens = SMALL)]
async fn short() -> Result<(), ApiError> {
    Ok(())
}

struct Client {
    max_tokens: u64,
}

impl Client {
    #[llm_retry(limiter = OPENAI, tokens = estimate(&prompt) + self.max_tokens)]
    async fn complete(&self, prompt: String) -> Result<String, ApiError> {
        Ok(prompt.clone())
    }
}

#[llm_retry(limiter = OPENAI, tokens = 4096)]
async fn fixed() -> Result<(), ApiError> {
    Ok(())
}

#[test]
fn compiles() {
    drop(chat("hi"));
    drop(short());
    drop(Client { max_tokens: 256 }.complete("hi".to_owned()));
    drop(fixed());
}
