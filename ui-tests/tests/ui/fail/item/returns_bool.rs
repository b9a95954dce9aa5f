use llm_retry::llm_retry;

#[llm_retry]
async fn healthy() -> bool {
    true
}

fn main() {
    drop(healthy());
}
