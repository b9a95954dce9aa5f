use llm_retry::llm_retry;

#[llm_retry]
async fn first(prompts: &[String]) -> &str {
    &prompts[0]
}

fn main() {
    drop(first(&[]));
}
