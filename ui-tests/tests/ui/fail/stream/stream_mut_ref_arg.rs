use futures::Stream;
use llm_retry::{ApiError, llm_retry};

#[llm_retry(stream = "restart")]
async fn chat(log: &mut Vec<String>) -> Result<impl Stream<Item = Result<String, ApiError>>, ApiError> {
    log.push("opened".into());
    Ok(futures::stream::iter([Ok(String::from("hi"))]))
}

fn main() {
    drop(chat(&mut Vec::new()));
}
