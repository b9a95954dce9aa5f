//! Generics, lifetimes, `impl Trait` arguments and returns, where clauses.
use llm_retry::{ApiError, Classify, llm_retry};
use std::fmt::Display;

trait Model {
    type Error: Classify;
    async fn complete(&self, prompt: &str) -> Result<String, Self::Error>;
}

// A named lifetime, where elision would do: the attribute must carry it as written.
#[allow(clippy::needless_lifetimes)]
#[llm_retry(max = 2)]
async fn complete<'a, M: Model + ?Sized>(model: &'a M, prompt: impl AsRef<str>) -> Result<String, M::Error>
where
    M::Error: std::fmt::Debug,
{
    model.complete(prompt.as_ref()).await
}

#[llm_retry(max = 2)]
async fn longest<'a, 'b: 'a>(a: &'a str, b: &'b str) -> Result<&'a str, ApiError> {
    Ok(if a.len() >= b.len() { a } else { b })
}

#[llm_retry(max = 2)]
async fn shown(n: u32) -> Result<impl Display, ApiError> {
    Ok(n)
}

struct Echo;

impl Model for Echo {
    type Error = ApiError;
    async fn complete(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(prompt.to_owned())
    }
}

#[test]
fn compiles() {
    drop(complete(&Echo, "hi"));
    drop(longest("a", "bb"));
    drop(shown(3));
}
