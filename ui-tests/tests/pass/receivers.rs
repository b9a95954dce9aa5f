//! Every receiver the body can borrow through: `&self`, `&mut self`, `self: Arc<Self>`.
use llm_retry::{ApiError, llm_retry};
use std::sync::Arc;

struct Client {
    calls: u32,
    prefix: String,
}

impl Client {
    #[llm_retry(max = 3)]
    async fn by_ref(&self, prompt: &str) -> Result<String, ApiError> {
        Ok(format!("{}{prompt}", self.prefix))
    }

    #[llm_retry(max = 3)]
    async fn by_mut(&mut self, prompt: &str) -> Result<String, ApiError> {
        self.calls += 1;
        Ok(format!("{}{prompt}", self.calls))
    }

    #[llm_retry(max = 3)]
    async fn by_arc(self: Arc<Self>, prompt: String) -> Result<String, ApiError> {
        Ok(format!("{}{}", self.prefix, prompt.len()))
    }
}

#[test]
fn compiles() {
    let mut c = Client { calls: 0, prefix: String::new() };
    drop(c.by_ref("hi"));
    drop(c.by_mut("hi"));
    drop(Arc::new(c).by_arc(String::new()));
}
