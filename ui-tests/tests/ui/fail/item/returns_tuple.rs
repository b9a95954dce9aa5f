use llm_retry::llm_retry;

#[llm_retry]
async fn pair() -> (String, u32) {
    (String::new(), 0)
}

fn main() {
    drop(pair());
}
