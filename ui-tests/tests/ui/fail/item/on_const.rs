use llm_retry::llm_retry;

#[llm_retry(max = 3)]
const ATTEMPTS: u32 = 3;

fn main() {
    let _ = ATTEMPTS;
}
