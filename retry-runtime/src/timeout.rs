//! The runtime's own timeout error: what an attempt cut short by a deadline or a
//! per-attempt timeout turns into.

use core::fmt;
use std::time::Duration;

/// An attempt was cut short by the per-attempt timeout or by the call's total deadline.
///
/// It becomes your error type through `From<Timeout>`, which is required only when a
/// deadline or an attempt timeout is configured. [`ApiError`](crate::ApiError) and
/// `std::io::Error` (as [`TimedOut`](std::io::ErrorKind::TimedOut)) implement it.
///
/// ```
/// use llm_retry_runtime::Timeout;
/// use std::time::Duration;
///
/// let t = Timeout::attempt(Duration::from_secs(30));
/// assert_eq!(t.to_string(), "the attempt timed out after 30s");
/// assert!(!t.is_deadline());
/// let e: std::io::Error = t.into();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    limit: Duration,
    deadline: bool,
}

impl Timeout {
    /// An attempt that ran longer than the per-attempt timeout `limit`.
    ///
    /// ```
    /// let t = llm_retry_runtime::Timeout::attempt(std::time::Duration::from_secs(1));
    /// assert_eq!(t.limit(), std::time::Duration::from_secs(1));
    /// ```
    pub const fn attempt(limit: Duration) -> Self {
        Timeout { limit, deadline: false }
    }

    /// An attempt cut short because the call's total deadline `limit` ran out.
    ///
    /// ```
    /// let t = llm_retry_runtime::Timeout::deadline(std::time::Duration::from_secs(120));
    /// assert!(t.is_deadline());
    /// ```
    pub const fn deadline(limit: Duration) -> Self {
        Timeout { limit, deadline: true }
    }

    /// The limit that was exceeded.
    ///
    /// ```
    /// let t = llm_retry_runtime::Timeout::deadline(std::time::Duration::from_secs(9));
    /// assert_eq!(t.limit().as_secs(), 9);
    /// ```
    pub const fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether the call's total deadline (rather than the per-attempt timeout) ran out.
    ///
    /// ```
    /// let t = llm_retry_runtime::Timeout::attempt(std::time::Duration::from_secs(9));
    /// assert!(!t.is_deadline());
    /// ```
    pub const fn is_deadline(&self) -> bool {
        self.deadline
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deadline {
            write!(f, "the call's deadline of {:?} ran out during an attempt", self.limit)
        } else {
            write!(f, "the attempt timed out after {:?}", self.limit)
        }
    }
}

impl std::error::Error for Timeout {}

impl From<Timeout> for std::io::Error {
    fn from(t: Timeout) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, t)
    }
}
