//! Result validation: turning a successful but unusable value into a retryable failure.

use core::fmt;
use std::borrow::Cow;

/// A validator rejected a successful value: the model returned empty text, invalid JSON, or
/// anything else the caller cannot use.
///
/// Validators return it; the runtime retries it as [`ErrorKind::InvalidOutput`](crate::ErrorKind::InvalidOutput),
/// and after the last attempt hands it to the caller through `From<InvalidOutput>` for the
/// caller's error type.
///
/// ```
/// use llm_retry_runtime::InvalidOutput;
///
/// fn non_empty(text: &String) -> Result<(), InvalidOutput> {
///     if text.trim().is_empty() { Err(InvalidOutput::new("the model returned empty text")) } else { Ok(()) }
/// }
/// assert!(non_empty(&"hi".to_string()).is_ok());
/// assert_eq!(non_empty(&" ".to_string()).unwrap_err().reason(), "the model returned empty text");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOutput {
    reason: Cow<'static, str>,
}

impl InvalidOutput {
    /// A rejection with a short reason.
    ///
    /// ```
    /// let e = llm_retry_runtime::InvalidOutput::new(format!("missing field {}", "answer"));
    /// assert_eq!(e.to_string(), "unusable output: missing field answer");
    /// ```
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        InvalidOutput { reason: reason.into() }
    }

    /// Why the value was rejected.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::InvalidOutput::new("empty").reason(), "empty");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unusable output: {}", self.reason)
    }
}

impl std::error::Error for InvalidOutput {}

impl From<InvalidOutput> for std::io::Error {
    fn from(e: InvalidOutput) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}
