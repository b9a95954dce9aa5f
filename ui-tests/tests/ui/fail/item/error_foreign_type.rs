use llm_retry::llm_retry;

// Another crate's error type (here std's): the orphan rule forbids `impl Classify` for it in
// this crate, so the note must offer a newtype or a type that is classified already.
#[llm_retry(max = 3)]
async fn count(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.trim().parse()
}

fn main() {
    drop(count("42"));
}
