//! A per-kind (or per-status) override of the policy's attempt limit and backoff.

use crate::backoff::{Backoff, Jitter};
use crate::kind::ErrorKind;

/// What a per-kind rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Kind(ErrorKind),
    Status(u16),
}

impl Target {
    /// Whether two rules name the same thing (a `const` form of `==`).
    pub(crate) const fn same_as(self, other: Target) -> bool {
        match (self, other) {
            (Target::Kind(x), Target::Kind(y)) => x as u8 == y as u8,
            (Target::Status(x), Target::Status(y)) => x == y,
            _ => false,
        }
    }
}

/// A per-kind (or per-status) override: its own attempt limit and backoff.
///
/// The article's conditional table, in one policy:
///
/// ```
/// use llm_retry_rules::{Backoff, ErrorKind, Policy, Rule};
/// use std::time::Duration;
///
/// let exp = Backoff::Exponential {
///     base: Duration::from_secs(1),
///     multiplier: 2.0,
///     min_delay: Duration::ZERO,
///     max_delay: Duration::from_secs(30),
/// };
/// let policy = Policy::builder()
///     .max_attempts(6)
///     .rule(Rule::kind(ErrorKind::RateLimited).max_attempts(3).backoff(Backoff::Fixed { delay: Duration::from_secs(60) }))
///     .rule(Rule::kind(ErrorKind::Connection).max_attempts(5).backoff(exp))
///     .rule(Rule::status(502).max_attempts(2))
///     .rule(Rule::status(500).max_attempts(3).backoff(exp))
///     .rule(Rule::status(503).max_attempts(3).backoff(exp))
///     .build();
/// assert!(policy.is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub(crate) target: Target,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) jitter: Option<Jitter>,
}

impl Rule {
    /// A rule for every failure of `kind`.
    ///
    /// ```
    /// let r = llm_retry_rules::Rule::kind(llm_retry_rules::ErrorKind::RateLimited).max_attempts(3);
    /// assert_eq!(r.attempt_limit(), Some(3));
    /// ```
    pub const fn kind(kind: ErrorKind) -> Self {
        Rule { target: Target::Kind(kind), max_attempts: None, backoff: None, jitter: None }
    }

    /// A rule for every failure with HTTP `status`. Status rules win over kind rules.
    ///
    /// ```
    /// let r = llm_retry_rules::Rule::status(502).max_attempts(2);
    /// assert_eq!(r.attempt_limit(), Some(2));
    /// ```
    pub const fn status(status: u16) -> Self {
        Rule { target: Target::Status(status), max_attempts: None, backoff: None, jitter: None }
    }

    /// At most `n` attempts when every failure is of this kind: the failure that would make
    /// the `n`-th of its kind gives up instead of retrying.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Rule::status(500).max_attempts(4).attempt_limit(), Some(4));
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The backoff used after failures of this kind.
    ///
    /// ```
    /// use llm_retry_rules::{Backoff, Rule};
    /// let r = Rule::status(503).backoff(Backoff::Fixed { delay: std::time::Duration::from_secs(1) });
    /// # let _ = r;
    /// ```
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// The jitter used after failures of this kind.
    ///
    /// ```
    /// use llm_retry_rules::{Jitter, Rule};
    /// let r = Rule::status(503).jitter(Jitter::Equal);
    /// # let _ = r;
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// The rule's attempt limit, if it sets one.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Rule::status(500).attempt_limit(), None);
    /// ```
    pub const fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    pub(crate) const fn applies_to(&self, kind: ErrorKind, status: Option<u16>) -> bool {
        match (self.target, status) {
            (Target::Status(s), Some(cs)) => s == cs,
            (Target::Status(_), None) => false,
            (Target::Kind(k), _) => k as u8 == kind as u8,
        }
    }

    pub(crate) const fn is_status(&self) -> bool {
        matches!(self.target, Target::Status(_))
    }
}
