//! Why a policy is invalid: the problem, the setting it is about, and the rule it is in.

use crate::keys;
use crate::kind::ErrorKind;
use core::fmt;

/// The most attempts a policy or a rule may allow: the engine counts a rule's failures in 16
/// bits, and [`PolicyBuilder::build`](crate::PolicyBuilder::build) rejects a rule allowing more
/// with [`Problem::RuleAttemptsTooMany`].
///
/// ```
/// use llm_retry_rules::{ErrorKind, Policy, Problem, Rule, MAX_RULE_ATTEMPTS};
/// let rule = |n| Rule::kind(ErrorKind::RateLimited).max_attempts(n);
/// let policy = |n| Policy::builder().max_attempts(u32::MAX).rule(rule(n)).build();
/// assert!(policy(MAX_RULE_ATTEMPTS).is_ok());
/// assert_eq!(policy(MAX_RULE_ATTEMPTS + 1).unwrap_err(), Problem::RuleAttemptsTooMany);
/// ```
pub const MAX_RULE_ATTEMPTS: u32 = u16::MAX as u32;

/// The largest proportional jitter factor: the jitter may add at most ten times the delay.
///
/// ```
/// use llm_retry_rules::{Jitter, Policy, MAX_JITTER_FACTOR};
/// let p = |factor| Policy::builder().jitter(Jitter::Proportional { factor }).build();
/// assert!(p(MAX_JITTER_FACTOR).is_ok());
/// assert!(p(MAX_JITTER_FACTOR * 2.0).is_err());
/// ```
pub const MAX_JITTER_FACTOR: f64 = 10.0;

/// What is wrong with a policy. Each has a sentence that names the fix
/// ([`message`](Self::message)) and the setting it is about ([`field`](Self::field)).
///
/// ```
/// use llm_retry_rules::{Field, Problem};
/// assert_eq!(Problem::InvalidMultiplier.field(), Field::Multiplier);
/// assert!(Problem::ZeroAttempts.message().contains("at least 1"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// A fixed backoff's delay is zero: that is no backoff at all.
    ZeroDelay,
    /// An exponential or decorrelated backoff starts at zero, so it never grows.
    ZeroBase,
    /// A backoff's cap is zero.
    ZeroMaxDelay,
    /// A backoff's cap is below its first delay.
    MaxDelayBelowBase,
    /// An exponential backoff's floor is above its cap.
    MinDelayAboveMaxDelay,
    /// The multiplier is NaN, infinite or below 1.
    InvalidMultiplier,
    /// The proportional jitter factor is NaN, negative, or above [`MAX_JITTER_FACTOR`].
    InvalidJitterFactor,
    /// `max_retry_after` is zero.
    ZeroMaxRetryAfter,
    /// More rules than [`MAX_RULES`](crate::MAX_RULES).
    TooManyRules,
    /// A rule has `max_attempts = 0`.
    ZeroRuleAttempts,
    /// A rule's `max_attempts` is above [`MAX_RULE_ATTEMPTS`].
    RuleAttemptsTooMany,
    /// A rule allows more attempts than the policy, whose limit stops the call first.
    RuleAttemptsAboveMax,
    /// Two rules for the same kind or status.
    DuplicateRule,
    /// A rule for a kind or status the policy does not retry.
    RuleForUnretried,
    /// A kind that retrying can never fix was listed as retryable.
    NeverRetryableKind(ErrorKind),
    /// A status outside 400..=599, or one that retrying can never fix.
    InvalidStatus(u16),
}

/// The setting a [`Problem`] is about, named by its key in the attribute and in configuration
/// files ([`key`](Self::key)).
///
/// ```
/// assert_eq!(llm_retry_rules::Field::MaxAttempts.key(), "max");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `max`: the most attempts.
    MaxAttempts,
    /// `delay`: the fixed backoff's delay.
    Delay,
    /// `base`: the first delay.
    Base,
    /// `max_delay`: the cap.
    MaxDelay,
    /// `min_delay`: the exponential floor.
    MinDelay,
    /// `multiplier`: the exponential growth.
    Multiplier,
    /// `jitter_factor`: the proportional jitter's spread.
    JitterFactor,
    /// `on`: what is retried.
    On,
    /// `rule(...)`: a per-kind rule, as a whole, or its target.
    Rule,
    /// `max_retry_after`: the longest Retry-After waited for.
    MaxRetryAfter,
}

impl Field {
    /// The key that sets this field in `#[llm_retry(...)]` (and in a `rule(...)`).
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Field::MaxDelay.key(), "max_delay");
    /// ```
    pub const fn key(self) -> &'static str {
        match self {
            Field::MaxAttempts => keys::MAX,
            Field::Delay => keys::DELAY,
            Field::Base => keys::BASE,
            Field::MaxDelay => keys::MAX_DELAY,
            Field::MinDelay => keys::MIN_DELAY,
            Field::Multiplier => keys::MULTIPLIER,
            Field::JitterFactor => keys::JITTER_FACTOR,
            Field::On => keys::ON,
            Field::Rule => keys::RULE,
            Field::MaxRetryAfter => keys::MAX_RETRY_AFTER,
        }
    }
}

impl Problem {
    /// The setting this problem is about.
    ///
    /// ```
    /// use llm_retry_rules::{Field, Problem};
    /// assert_eq!(Problem::MaxDelayBelowBase.field(), Field::MaxDelay);
    /// ```
    pub const fn field(self) -> Field {
        match self {
            Problem::ZeroAttempts | Problem::ZeroRuleAttempts | Problem::RuleAttemptsTooMany => Field::MaxAttempts,
            Problem::RuleAttemptsAboveMax => Field::MaxAttempts,
            Problem::ZeroDelay => Field::Delay,
            Problem::ZeroBase => Field::Base,
            Problem::ZeroMaxDelay | Problem::MaxDelayBelowBase => Field::MaxDelay,
            Problem::MinDelayAboveMaxDelay => Field::MinDelay,
            Problem::InvalidMultiplier => Field::Multiplier,
            Problem::InvalidJitterFactor => Field::JitterFactor,
            Problem::ZeroMaxRetryAfter => Field::MaxRetryAfter,
            Problem::NeverRetryableKind(_) | Problem::InvalidStatus(_) => Field::On,
            Problem::TooManyRules | Problem::DuplicateRule | Problem::RuleForUnretried => Field::Rule,
        }
    }

    /// The problem as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_rules::Problem::ZeroMaxRetryAfter.message().contains("max_retry_after"));
    /// ```
    pub const fn message(self) -> &'static str {
        match self {
            Problem::ZeroAttempts => "max_attempts counts attempts and must be at least 1; use 1 to disable retries",
            Problem::ZeroDelay => "a zero fixed delay retries at once; say so with Backoff::None",
            Problem::ZeroBase => "a zero base never grows, so every retry is immediate; use a base like 500 ms",
            Problem::ZeroMaxDelay => "a zero max_delay caps every delay at zero; use a cap like 20 s",
            Problem::MaxDelayBelowBase => "max_delay must be at least the first delay (base)",
            Problem::MinDelayAboveMaxDelay => "min_delay must be at most max_delay",
            Problem::InvalidMultiplier => "the multiplier must be a finite number of at least 1.0, such as 2.0",
            Problem::InvalidJitterFactor => {
                "the proportional jitter factor must be a number from 0.0 to 10.0, such as 0.25"
            }
            Problem::ZeroMaxRetryAfter => {
                "max_retry_after must be above zero; to ignore Retry-After, turn it off instead"
            }
            Problem::TooManyRules => "a policy holds at most 6 per-kind rules",
            Problem::ZeroRuleAttempts => "a rule's max_attempts must be at least 1",
            Problem::RuleAttemptsTooMany => {
                "a rule's max_attempts is at most 65535; to retry longer, bound the call with a deadline"
            }
            Problem::RuleAttemptsAboveMax => {
                "a rule's max_attempts exceeds the policy's, which stops first; raise the policy's or lower the rule's"
            }
            Problem::DuplicateRule => "two rules name the same kind or status; merge them",
            Problem::RuleForUnretried => {
                "a rule names a kind or status that the policy does not retry; add it to retry_on"
            }
            Problem::NeverRetryableKind(_) => "this kind can never succeed on a retry; remove it from retry_on",
            Problem::InvalidStatus(_) => {
                "only error statuses that a retry can fix (400..=599, not 400, 401, 402, 403, 404, 413, 422) can be retried"
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NeverRetryableKind(k) => {
                write!(f, "{k} is never retried: {}; remove it from retry_on", k.never_retryable_reason().unwrap_or(""))
            }
            Problem::InvalidStatus(s) => write!(f, "status {s}: {}", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

/// Why a policy is invalid: the [`Problem`], and the rule it is in (`None` for the policy's
/// own settings). Returned by [`PolicyBuilder::build`](crate::PolicyBuilder::build); never a
/// panic. It compares equal to its problem.
///
/// ```
/// use llm_retry_rules::{ErrorKind, Field, Policy, Problem, Rule};
/// assert_eq!(Policy::builder().max_attempts(0).build().unwrap_err(), Problem::ZeroAttempts);
///
/// let e = Policy::builder().rule(Rule::kind(ErrorKind::Timeout).max_attempts(0)).build().unwrap_err();
/// assert_eq!((e.problem(), e.field(), e.rule()), (Problem::ZeroRuleAttempts, Field::MaxAttempts, Some(0)));
/// assert_eq!(e.to_string(), "rule 1: a rule's max_attempts must be at least 1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyError {
    problem: Problem,
    rule: Option<u8>,
}

impl PolicyError {
    /// A problem with the policy's own settings.
    pub(crate) const fn policy(problem: Problem) -> Self {
        PolicyError { problem, rule: None }
    }

    /// A problem with the rule at `index` (in the order the rules were added).
    pub(crate) const fn rule_at(index: usize, problem: Problem) -> Self {
        // At most MAX_RULES (6) rules are kept: the index fits.
        PolicyError { problem, rule: Some(index as u8) }
    }

    /// What is wrong.
    ///
    /// ```
    /// use llm_retry_rules::{Policy, Problem};
    /// assert_eq!(Policy::builder().max_attempts(0).build().unwrap_err().problem(), Problem::ZeroAttempts);
    /// ```
    pub const fn problem(&self) -> Problem {
        self.problem
    }

    /// The setting it is about.
    ///
    /// ```
    /// use llm_retry_rules::{Field, Policy};
    /// assert_eq!(Policy::builder().max_attempts(0).build().unwrap_err().field(), Field::MaxAttempts);
    /// ```
    pub const fn field(&self) -> Field {
        self.problem.field()
    }

    /// The index of the rule it is in, in the order the rules were added; `None` when it is
    /// about the policy's own settings.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Policy::builder().max_attempts(0).build().unwrap_err().rule(), None);
    /// ```
    pub const fn rule(&self) -> Option<usize> {
        match self.rule {
            Some(i) => Some(i as usize),
            None => None,
        }
    }

    /// The problem as a sentence that names the fix (without the rule's number; see
    /// [`Display`](fmt::Display) for the whole error).
    ///
    /// ```
    /// let e = llm_retry_rules::Policy::builder().max_attempts(0).build().unwrap_err();
    /// assert!(e.message().contains("at least 1"));
    /// ```
    pub const fn message(&self) -> &'static str {
        self.problem.message()
    }
}

impl PartialEq<Problem> for PolicyError {
    fn eq(&self, other: &Problem) -> bool {
        self.problem == *other
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.rule {
            write!(f, "rule {}: ", u16::from(i) + 1)?;
        }
        fmt::Display::fmt(&self.problem, f)
    }
}

impl std::error::Error for PolicyError {}
