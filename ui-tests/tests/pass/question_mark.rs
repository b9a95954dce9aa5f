//! `?` (through `From`) and `return` end the attempt and infer from the fn's return type.
use llm_retry::{ApiError, Classification, Classify, ErrorKind, InvalidOutput, Timeout, llm_retry};

#[derive(Debug)]
enum AppError {
    Api(ApiError),
    Parse(std::num::ParseIntError),
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        AppError::Api(e)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(e: std::num::ParseIntError) -> Self {
        AppError::Parse(e)
    }
}

impl From<Timeout> for AppError {
    fn from(t: Timeout) -> Self {
        AppError::Api(ApiError::timeout(t.to_string()))
    }
}

impl From<InvalidOutput> for AppError {
    fn from(e: InvalidOutput) -> Self {
        AppError::Api(ApiError::new(ErrorKind::InvalidOutput, e.reason().to_owned()))
    }
}

impl Classify for AppError {
    fn classify(&self) -> Classification {
        match self {
            AppError::Api(e) => e.classify(),
            AppError::Parse(_) => Classification::new(ErrorKind::InvalidOutput),
        }
    }
}

async fn fetch(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

#[llm_retry(max = 3, deadline = "1m", attempt_timeout = "10s")]
async fn tokens(prompt: &str) -> Result<u32, AppError> {
    let text = fetch(prompt).await?;
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.trim().parse()?;
    Ok(n)
}

#[test]
fn compiles() {
    drop(tokens("42"));
    // `?` on a parse error converts it through `From`.
    let parsed: Result<u32, AppError> = "4x".parse::<u32>().map_err(AppError::from);
    assert!(matches!(parsed, Err(AppError::Parse(e)) if e.to_string() == "invalid digit found in string"));
}
