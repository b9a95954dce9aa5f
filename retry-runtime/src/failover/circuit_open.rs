//! The error of a call that no target would take: every breaker left was open.

use crate::breaker::Refused;
use crate::{ApiError, Classification, Classify, ErrorKind};
use core::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Every target of a call's chain was refused by its open circuit breaker, before any
/// attempt was made. A call of a fallback chain needs `E: From<CircuitOpen>` (implemented
/// for [`ApiError`] and [`std::io::Error`]) to end with it.
///
/// It classifies as [`ErrorKind::Overloaded`] with `x-should-retry: false`: the target is
/// down, and retrying at once cannot help.
///
/// ```
/// use llm_retry_runtime::failover::CircuitOpen;
/// use std::time::Duration;
/// let e = CircuitOpen::new("gpt-4o", Some(Duration::from_millis(29_800)));
/// assert_eq!(e.to_string(), "circuit open for `gpt-4o`, until 29.8 s from now");
/// assert_eq!(e.retry_in(), Some(Duration::from_millis(29_800)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitOpen {
    breaker: &'static str,
    retry_in: Option<Duration>,
}

impl CircuitOpen {
    /// The last breaker that refused, and how long it stays open (`None`: it is half-open
    /// and its one probe is in flight).
    ///
    /// ```
    /// let e = llm_retry_runtime::failover::CircuitOpen::new("claude", None);
    /// assert!(e.to_string().contains("probe"));
    /// ```
    pub const fn new(breaker: &'static str, retry_in: Option<Duration>) -> CircuitOpen {
        CircuitOpen { breaker, retry_in }
    }

    pub(crate) fn refused(r: Refused) -> CircuitOpen {
        let now = Instant::now();
        CircuitOpen::new(r.breaker, r.until.map(|u| u.saturating_duration_since(now)))
    }

    /// The breaker's name.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::CircuitOpen::new("x", None).breaker(), "x");
    /// ```
    pub const fn breaker(&self) -> &'static str {
        self.breaker
    }

    /// How long the breaker stays open; `None` while it is half-open with a probe in flight.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::CircuitOpen::new("x", None).retry_in(), None);
    /// ```
    pub const fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.retry_in {
            Some(d) => write!(f, "circuit open for `{}`, until {:.1} s from now", self.breaker, d.as_secs_f64()),
            None => write!(f, "circuit half-open for `{}`: its one probe is in flight", self.breaker),
        }
    }
}

impl std::error::Error for CircuitOpen {}

impl Classify for CircuitOpen {
    /// [`ErrorKind::Overloaded`], not to be retried.
    ///
    /// ```
    /// use llm_retry_runtime::{Classify, ErrorKind, failover::CircuitOpen};
    /// let c = CircuitOpen::new("x", None).classify();
    /// assert_eq!((c.kind, c.should_retry), (ErrorKind::Overloaded, Some(false)));
    /// ```
    fn classify(&self) -> Classification {
        Classification { should_retry: Some(false), ..Classification::new(ErrorKind::Overloaded) }
    }
}

impl From<CircuitOpen> for ApiError {
    /// [`ErrorKind::Overloaded`], with the refusal as the message.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind, failover::CircuitOpen};
    /// let e = ApiError::from(CircuitOpen::new("gpt-4o", None));
    /// assert_eq!(e.kind(), ErrorKind::Overloaded);
    /// ```
    fn from(c: CircuitOpen) -> Self {
        ApiError::wrapping(ErrorKind::Overloaded, None, Arc::new(c))
    }
}

impl From<CircuitOpen> for std::io::Error {
    /// An `io::Error` of kind `Other` that wraps it.
    ///
    /// ```
    /// let e = std::io::Error::from(llm_retry_runtime::failover::CircuitOpen::new("x", None));
    /// assert!(e.to_string().starts_with("circuit half-open"));
    /// ```
    fn from(c: CircuitOpen) -> Self {
        std::io::Error::other(c)
    }
}
