//! `stream = ...`: free fns and `&self` methods, borrowed and owned arguments, a pattern
//! argument, a type parameter, a named stream type, and strict lints on the expansion.
#![deny(warnings, unused_qualifications, unused_results, missing_docs, unreachable_pub)]
//! Crate docs.

use futures::Stream;
use futures::stream::{self, BoxStream, StreamExt};
use llm_retry::{ApiError, RetryEvent, llm_retry, stream::Resume, stream::StreamEvent};

fn log_retry(_: &RetryEvent<'_, ApiError>) {}

/// Continue mode: the text so far comes back as `resume.text()`.
#[llm_retry(stream = "continue", max = 5, deadline = "2m", first_chunk_timeout = "30s", idle_timeout = "15s", notify = log_retry)]
pub async fn chat(
    prompt: &str,
    mut model: String,
    resume: Resume,
) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    model.push_str(resume.text());
    Ok(stream::iter([Ok(format!("{prompt}{model}"))]))
}

/// A client with methods.
pub struct Client<T> {
    prefix: T,
}

impl<T: AsRef<str> + Sync> Client<T> {
    /// Restart mode, no `Resume`, a pattern argument, a named stream type.
    #[llm_retry(stream = "restart", max = 3)]
    pub async fn complete<'p>(
        &self,
        prompt: &'p str,
        (n, sep): (usize, char),
    ) -> Result<BoxStream<'static, Result<String, ApiError>>, ApiError> {
        let text = format!("{}{sep}{}", self.prefix.as_ref(), prompt.repeat(n));
        Ok(stream::once(async move { Ok(text) }).boxed())
    }

    /// Skip mode with a type parameter taken by value.
    #[llm_retry(stream = "skip")]
    pub async fn echo<U: Clone + ToString>(
        &self,
        value: U,
    ) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
        Ok(stream::iter([Ok(value.to_string())]))
    }
}

#[test]
fn compiles() {
    let client = Client { prefix: String::from(">") };
    let prompt = String::from("hi");
    let a = chat(&prompt, String::from("m"));
    let b = client.complete(&prompt, (2, ' '));
    let c = client.echo(3_u8);
    fn is_stream<S: Stream<Item = Result<StreamEvent<String>, ApiError>>>(_: &S) {}
    is_stream(&a);
    is_stream(&b);
    is_stream(&c);
}
