//! The per-endpoint controls' builders and snapshots, and why one could not be built: the
//! parts of [`Budget`](crate::Budget), [`Limiter`](crate::Limiter) and
//! [`Adaptive`](crate::Adaptive) that only their configuration names; and `SendObserved`
//! (feature `reqwest`), which feeds a limiter the provider's rate-limit headers.

use core::fmt;

pub use crate::adaptive::AdaptiveBuilder;
pub use crate::budget::{BudgetBuilder, BudgetStats};
#[cfg(feature = "reqwest")]
pub use crate::integrations::SendObserved;
pub use crate::limiter::{InFlight, LimiterBuilder, LimiterConfig, LimiterStats, RateSource};

/// A bad argument to one of the per-endpoint builders. Returned by `build`; never a panic.
///
/// ```
/// use llm_retry_runtime::{Budget, limits::LimitError};
/// assert_eq!(Budget::builder().ratio(1.5).build().unwrap_err(), LimitError::InvalidRatio);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError {
    /// A budget's ratio is NaN, negative, or above 1.
    InvalidRatio,
    /// A budget's burst is zero, or above 1,000,000.
    InvalidBurst,
    /// A limiter's rate is NaN, infinite, not positive, or the floor is above the ceiling; or
    /// a configured requests or tokens per minute is negative, NaN or absurd.
    InvalidRate,
    /// A limiter's β is not strictly between 0 and 1.
    InvalidBeta,
    /// A limiter's scale (the share of the pre-cut rate regained per second) is NaN, infinite
    /// or not positive.
    InvalidScale,
    /// An adaptive multiplier is NaN, infinite, below 1 or above 100.
    InvalidMultiplier,
    /// A window of zero, or longer than a day.
    InvalidWindow,
    /// A limiter's `max_in_flight` of zero.
    InvalidInFlight,
}

impl LimitError {
    /// The error as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_runtime::limits::LimitError::InvalidBeta.message().contains("0.7"));
    /// ```
    pub const fn message(&self) -> &'static str {
        match self {
            LimitError::InvalidRatio => {
                "a budget's ratio is the retries earned per success: a number in 0.0..=1.0, such as 0.1"
            }
            LimitError::InvalidBurst => "a budget's burst counts retries and must be in 1..=1000000, such as 5",
            LimitError::InvalidRate => {
                "a limiter's rates are requests per second: finite and above zero, with min_rate <= max_rate"
            }
            LimitError::InvalidBeta => {
                "β is the factor a throttle multiplies the rate by: strictly between 0 and 1, such as 0.7"
            }
            LimitError::InvalidScale => {
                "the scale is the share of the pre-cut rate regained per second: finite and above zero, such as 0.2"
            }
            LimitError::InvalidMultiplier => {
                "the largest delay multiplier must be a finite number in 1.0..=100.0, such as 3.0"
            }
            LimitError::InvalidWindow => "a window must be above zero and at most a day, such as 300 s",
            LimitError::InvalidInFlight => {
                "max_in_flight caps the requests in flight at once: at least 1, such as 16 (leave it out for no cap)"
            }
        }
    }
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for LimitError {}
