//! Which failures are retried: a set of kinds and a set of HTTP statuses.

use crate::error::Problem;
use crate::kind::ErrorKind;
use core::fmt;

/// Which failures are retried: a set of kinds and a set of HTTP statuses.
///
/// A failure is retried when its kind is in the set, or its status is in the set and its kind
/// is not one that retrying can never fix (a 429 whose body says the quota is exhausted is
/// not retried even when `429` is listed).
///
/// ```
/// use llm_retry_rules::{ErrorKind, RetryOn};
///
/// let on = RetryOn::none().kind(ErrorKind::RateLimited).status(503);
/// assert!(on.contains_kind(ErrorKind::RateLimited));
/// assert!(on.contains_status(503));
/// assert!(!on.contains_status(500));
/// assert!(RetryOn::DEFAULT.contains_kind(ErrorKind::Overloaded));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RetryOn {
    kinds: u16,
    statuses: [u64; 8],
    /// The first entry that can never be valid, kept for
    /// [`PolicyBuilder::build`](crate::PolicyBuilder::build) to report.
    pub(crate) invalid: Invalid,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Invalid {
    None,
    Status(u16),
    Kind(ErrorKind),
}

impl RetryOn {
    /// What the official OpenAI and Anthropic SDKs retry: see
    /// [`ErrorKind::is_retryable_by_default`].
    pub const DEFAULT: RetryOn = {
        let mut on = RetryOn::none();
        let mut i = 0;
        while i < ErrorKind::ALL.len() {
            if ErrorKind::ALL[i].is_retryable_by_default() {
                on = on.kind(ErrorKind::ALL[i]);
            }
            i += 1;
        }
        on
    };

    /// Retry nothing.
    ///
    /// ```
    /// assert!(!llm_retry_rules::RetryOn::none().contains_kind(llm_retry_rules::ErrorKind::Timeout));
    /// ```
    pub const fn none() -> Self {
        RetryOn { kinds: 0, statuses: [0; 8], invalid: Invalid::None }
    }

    /// Whether `kind` may be listed: not when retrying can never fix it.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, Problem, RetryOn};
    /// assert_eq!(RetryOn::check_kind(ErrorKind::Timeout), Ok(()));
    /// assert_eq!(RetryOn::check_kind(ErrorKind::Auth), Err(Problem::NeverRetryableKind(ErrorKind::Auth)));
    /// ```
    pub const fn check_kind(kind: ErrorKind) -> Result<(), Problem> {
        match kind.never_retryable_reason() {
            Some(_) => Err(Problem::NeverRetryableKind(kind)),
            None => Ok(()),
        }
    }

    /// Whether `status` may be listed: an error status (400..=599) that retrying can fix.
    ///
    /// ```
    /// use llm_retry_rules::{Problem, RetryOn};
    /// assert_eq!(RetryOn::check_status(503), Ok(()));
    /// assert_eq!(RetryOn::check_status(401), Err(Problem::InvalidStatus(401)));
    /// assert_eq!(RetryOn::check_status(200), Err(Problem::InvalidStatus(200)));
    /// ```
    pub const fn check_status(status: u16) -> Result<(), Problem> {
        let fixable = ErrorKind::from_status(status).never_retryable_reason().is_none();
        if status >= 400 && status <= 599 && fixable { Ok(()) } else { Err(Problem::InvalidStatus(status)) }
    }

    /// Adds a kind. A kind that retrying can never fix ([`check_kind`](Self::check_kind))
    /// makes [`PolicyBuilder::build`](crate::PolicyBuilder::build) fail.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, RetryOn};
    /// assert!(RetryOn::none().kind(ErrorKind::Timeout).contains_kind(ErrorKind::Timeout));
    /// ```
    pub const fn kind(mut self, kind: ErrorKind) -> Self {
        if RetryOn::check_kind(kind).is_err() && matches!(self.invalid, Invalid::None) {
            self.invalid = Invalid::Kind(kind);
        }
        self.kinds |= 1 << kind.index();
        self
    }

    /// Adds an HTTP status. Only error statuses (400..=599) that retrying can fix are valid
    /// ([`check_status`](Self::check_status)); anything else makes
    /// [`PolicyBuilder::build`](crate::PolicyBuilder::build) fail.
    ///
    /// ```
    /// use llm_retry_rules::RetryOn;
    /// assert!(RetryOn::none().status(502).contains_status(502));
    /// ```
    pub const fn status(mut self, status: u16) -> Self {
        if RetryOn::check_status(status).is_ok() {
            let i = (status - 400) as usize;
            self.statuses[i / 64] |= 1 << (i % 64);
        } else if matches!(self.invalid, Invalid::None) {
            self.invalid = Invalid::Status(status);
        }
        self
    }

    /// Whether `kind` is in the set.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, RetryOn};
    /// assert!(!RetryOn::DEFAULT.contains_kind(ErrorKind::Auth));
    /// ```
    pub const fn contains_kind(&self, kind: ErrorKind) -> bool {
        self.kinds & (1 << kind.index()) != 0
    }

    /// Whether `status` is in the set.
    ///
    /// ```
    /// assert!(!llm_retry_rules::RetryOn::DEFAULT.contains_status(503));
    /// ```
    pub const fn contains_status(&self, status: u16) -> bool {
        if status < 400 || status > 599 {
            return false;
        }
        let i = (status - 400) as usize;
        self.statuses[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether this set retries a failure of `kind`, with HTTP `status` if it has one.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, RetryOn};
    /// let on = RetryOn::none().status(429);
    /// assert!(on.matches(ErrorKind::RateLimited, Some(429)));
    /// assert!(!on.matches(ErrorKind::QuotaExhausted, Some(429)));
    /// ```
    pub const fn matches(&self, kind: ErrorKind, status: Option<u16>) -> bool {
        if self.contains_kind(kind) {
            return true;
        }
        match status {
            Some(s) => self.contains_status(s) && kind.never_retryable_reason().is_none(),
            None => false,
        }
    }
}

impl fmt::Debug for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for k in ErrorKind::ALL {
            if self.contains_kind(k) {
                l.entry(&format_args!("{k}"));
            }
        }
        for s in 400..=599 {
            if self.contains_status(s) {
                l.entry(&s);
            }
        }
        l.finish()
    }
}
