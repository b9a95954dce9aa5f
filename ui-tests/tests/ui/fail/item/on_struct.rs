use llm_retry::llm_retry;

#[llm_retry(max = 3)]
struct Client;

fn main() {
    let _ = Client;
}
