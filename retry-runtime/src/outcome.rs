//! Why a call gave up: the reasons that events and stats report.

use core::fmt;

/// Why a call stopped retrying and returned its last error.
///
/// ```
/// use llm_retry_runtime::GiveUp;
/// assert_eq!(GiveUp::Exhausted.name(), "attempts exhausted");
/// assert_eq!(GiveUp::ALL.len(), 6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// The attempt limit (overall, or the per-kind limit) was reached.
    Exhausted,
    /// The next delay would cross the total deadline, or the deadline ran out in an attempt.
    Deadline,
    /// The failure cannot be fixed by retrying (or the policy does not retry it).
    NonRetryable,
    /// The server asked for a wait longer than `max_retry_after`.
    RetryAfterTooLong,
    /// The endpoint's [`Budget`](crate::Budget) had no token left for a retry: retries
    /// already make up the allowed share of recent traffic.
    BudgetExhausted,
    /// Every target left was refused by its open circuit breaker ("circuit open, until …"):
    /// see [`failover`](crate::failover).
    CircuitOpen,
}

impl GiveUp {
    /// Every reason, in index order.
    pub const ALL: [GiveUp; 6] = [
        GiveUp::Exhausted,
        GiveUp::Deadline,
        GiveUp::NonRetryable,
        GiveUp::RetryAfterTooLong,
        GiveUp::BudgetExhausted,
        GiveUp::CircuitOpen,
    ];

    /// A short phrase for logs and tables.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::GiveUp::Deadline.name(), "deadline");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            GiveUp::Exhausted => "attempts exhausted",
            GiveUp::Deadline => "deadline",
            GiveUp::NonRetryable => "non-retryable",
            GiveUp::RetryAfterTooLong => "retry-after over the cap",
            GiveUp::BudgetExhausted => "budget exhausted",
            GiveUp::CircuitOpen => "circuit open",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
