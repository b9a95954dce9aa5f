//! Retry-After and the other headers in which providers say when to come back.

use std::time::{Duration, SystemTime};

/// When the server asked to be called again.
///
/// A relative delay is kept as is; an HTTP date is kept as a point in wall-clock time and
/// resolved against the policy's injectable clock when the retry is planned.
///
/// ```
/// use llm_retry_runtime::RetryAfter;
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// assert_eq!(RetryAfter::Delay(Duration::from_secs(2)).resolve(now), Some(Duration::from_secs(2)));
/// let at = RetryAfter::At(now + Duration::from_secs(5));
/// assert_eq!(at.resolve(now), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Come back after this long.
    Delay(Duration),
    /// Come back at this wall-clock time (an HTTP date).
    At(SystemTime),
}

impl RetryAfter {
    /// The delay from `now`, or `None` when the hint is unusable (zero, or a date in the past)
    /// and the policy should fall back to its own backoff.
    ///
    /// ```
    /// use llm_retry_runtime::RetryAfter;
    /// use std::time::{Duration, SystemTime};
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    /// assert_eq!(RetryAfter::At(now - Duration::from_secs(1)).resolve(now), None);
    /// assert_eq!(RetryAfter::Delay(Duration::ZERO).resolve(now), None);
    /// ```
    pub fn resolve(self, now: SystemTime) -> Option<Duration> {
        let d = match self {
            RetryAfter::Delay(d) => d,
            RetryAfter::At(at) => at.duration_since(now).ok()?,
        };
        (!d.is_zero()).then_some(d)
    }
}
