//! Classification: turning an error value into an [`ErrorKind`] plus what the server said.

use crate::ErrorKind;
use crate::retry_after::RetryAfter;

/// What the runtime needs to know about a failed attempt.
///
/// Built by [`Classify::classify`]. Only the kind is required; the rest is what the server
/// said about retrying, when it said anything.
///
/// ```
/// use llm_retry_runtime::{Classification, ErrorKind, http::RetryAfter};
/// use std::time::Duration;
///
/// let c = Classification::new(ErrorKind::RateLimited)
///     .with_status(429)
///     .with_retry_after(RetryAfter::Delay(Duration::from_secs(2)));
/// assert_eq!(c.kind, ErrorKind::RateLimited);
/// assert_eq!(c.status, Some(429));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Classification {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The HTTP status, when the error came from an HTTP response.
    pub status: Option<u16>,
    /// When the server asked to be called again, if it did.
    pub retry_after: Option<RetryAfter>,
    /// `x-should-retry: true|false`: the server's own verdict, which overrides the kind.
    pub should_retry: Option<bool>,
}

impl Classification {
    /// A classification with only a kind.
    ///
    /// ```
    /// use llm_retry_runtime::{Classification, ErrorKind};
    /// assert_eq!(Classification::new(ErrorKind::Timeout).status, None);
    /// ```
    pub const fn new(kind: ErrorKind) -> Self {
        Classification { kind, status: None, retry_after: None, should_retry: None }
    }

    /// Sets the HTTP status.
    ///
    /// ```
    /// use llm_retry_runtime::{Classification, ErrorKind};
    /// assert_eq!(Classification::new(ErrorKind::Server).with_status(502).status, Some(502));
    /// ```
    pub const fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the server's Retry-After hint.
    ///
    /// ```
    /// use llm_retry_runtime::{Classification, ErrorKind, http::RetryAfter};
    /// use std::time::Duration;
    /// let c = Classification::new(ErrorKind::RateLimited)
    ///     .with_retry_after(RetryAfter::Delay(Duration::from_millis(250)));
    /// assert!(c.retry_after.is_some());
    /// ```
    pub const fn with_retry_after(mut self, hint: RetryAfter) -> Self {
        self.retry_after = Some(hint);
        self
    }

    /// Sets the server's `x-should-retry` verdict.
    ///
    /// ```
    /// use llm_retry_runtime::{Classification, ErrorKind};
    /// let c = Classification::new(ErrorKind::BadRequest).with_should_retry(true);
    /// assert_eq!(c.should_retry, Some(true));
    /// ```
    pub const fn with_should_retry(mut self, should_retry: bool) -> Self {
        self.should_retry = Some(should_retry);
        self
    }
}

/// Maps an error value to a [`Classification`].
///
/// Implement it for your own error type so that the policy can tell a rate limit from a
/// bad API key. The runtime implements it for `std::io::Error`, tokio's timeout error,
/// [`ApiError`](crate::ApiError), `(http::StatusCode, &http::HeaderMap)`, and, behind
/// features, `reqwest::Error` and async-openai's `OpenAIError`.
///
/// Application error types that wrap those are classified by their source chain: the
/// error, then each `source()` in turn (at most 32), the first of the types above that
/// says something deciding. That is `dyn Error` (so `Box<dyn Error + Send + Sync>`), and
/// behind the features of the same name `anyhow::Error` and `eyre::Report`. A chain with
/// none of them is [`ErrorKind::Other`].
///
/// The orphan rule forbids implementing it for another crate's type: wrap such a type in a
/// newtype of your own and implement it for that.
///
/// ```
/// use llm_retry_runtime::{Classification, Classify, ErrorKind};
///
/// /// std's error, in a type of this crate's own.
/// #[derive(Debug)]
/// struct BadNumber(std::num::ParseIntError);
///
/// impl Classify for BadNumber {
///     fn classify(&self) -> Classification {
///         // The model answered, but not with a number: worth asking again.
///         Classification::new(ErrorKind::InvalidOutput)
///     }
/// }
///
/// let e = BadNumber("forty-two".parse::<u32>().unwrap_err());
/// assert_eq!(e.classify().kind, ErrorKind::InvalidOutput);
/// ```
///
/// ```
/// use llm_retry_runtime::{Classification, Classify, ErrorKind};
///
/// enum MyError {
///     Http(u16),
///     Disconnected,
/// }
///
/// impl Classify for MyError {
///     fn classify(&self) -> Classification {
///         match self {
///             MyError::Http(status) => {
///                 Classification::new(ErrorKind::from_status(*status)).with_status(*status)
///             }
///             MyError::Disconnected => Classification::new(ErrorKind::Connection),
///         }
///     }
/// }
///
/// assert_eq!(MyError::Http(429).classify().kind, ErrorKind::RateLimited);
/// assert_eq!(MyError::Disconnected.classify().kind, ErrorKind::Connection);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say what kind of failure it is",
    label = "`llm_retry` needs `{Self}: Classify` to decide whether to retry",
    note = "if `{Self}` is your own type, implement `llm_retry::Classify` for it",
    note = "if `{Self}` is another crate's type, wrap it in a newtype of your own and implement `llm_retry::Classify` for that",
    note = "or return an error type that is classified already: `llm_retry::ApiError`, `Box<dyn std::error::Error + Send + Sync>`, or, with llm-retry's `anyhow` or `eyre` feature, `anyhow::Error` or `eyre::Report` (these are classified by the errors they wrap)"
)]
pub trait Classify {
    /// Says what kind of failure `self` is, and what the server said about retrying.
    fn classify(&self) -> Classification;
}

impl<E: Classify + ?Sized> Classify for &E {
    fn classify(&self) -> Classification {
        (**self).classify()
    }
}

impl<E: Classify + ?Sized> Classify for Box<E> {
    fn classify(&self) -> Classification {
        (**self).classify()
    }
}

impl<E: Classify + ?Sized> Classify for std::sync::Arc<E> {
    fn classify(&self) -> Classification {
        (**self).classify()
    }
}
