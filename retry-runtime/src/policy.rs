//! The retry policy: a `const` value saying how many attempts, how long to wait, what to
//! retry, and how to treat Retry-After. Built once, shared by every call.

use crate::backoff::{Backoff, Jitter};
use crate::classify::Classification;
use crate::kind::ErrorKind;
use core::fmt;
use std::time::{Duration, SystemTime};

/// The most per-kind rules one policy holds.
pub const MAX_RULES: usize = 6;

/// The most attempts a [`Rule`] may allow: its counter of failures holds this many, and
/// [`PolicyBuilder::build`] rejects a larger limit with [`PolicyError::RuleAttemptsTooMany`].
///
/// ```
/// use llm_retry_runtime::{ErrorKind, Policy, Rule, MAX_RULE_ATTEMPTS};
/// let rule = |n| Rule::kind(ErrorKind::RateLimited).max_attempts(n);
/// assert!(Policy::builder().rule(rule(MAX_RULE_ATTEMPTS)).build().is_ok());
/// assert!(Policy::builder().rule(rule(MAX_RULE_ATTEMPTS + 1)).build().is_err());
/// ```
pub const MAX_RULE_ATTEMPTS: u32 = u16::MAX as u32;

/// Which failures are retried: a set of kinds and a set of HTTP statuses.
///
/// A failure is retried when its kind is in the set, or its status is in the set and its kind
/// is not one that retrying can never fix (a 429 whose body says the quota is exhausted is
/// not retried even when `429` is listed).
///
/// ```
/// use llm_retry_runtime::{ErrorKind, RetryOn};
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
    /// The first entry that can never be valid, kept for [`PolicyBuilder::build`] to report.
    invalid: Invalid,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Invalid {
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
    /// assert!(!llm_retry_runtime::RetryOn::none().contains_kind(llm_retry_runtime::ErrorKind::Timeout));
    /// ```
    pub const fn none() -> Self {
        RetryOn { kinds: 0, statuses: [0; 8], invalid: Invalid::None }
    }

    /// Adds a kind. A kind that retrying can never fix makes [`PolicyBuilder::build`] fail.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, RetryOn};
    /// assert!(RetryOn::none().kind(ErrorKind::Timeout).contains_kind(ErrorKind::Timeout));
    /// ```
    pub const fn kind(mut self, kind: ErrorKind) -> Self {
        if kind.never_retryable_reason().is_some() && matches!(self.invalid, Invalid::None) {
            self.invalid = Invalid::Kind(kind);
        }
        self.kinds |= 1 << kind.index();
        self
    }

    /// Adds an HTTP status. Only error statuses (400..=599) that retrying can fix are valid;
    /// anything else makes [`PolicyBuilder::build`] fail.
    ///
    /// ```
    /// use llm_retry_runtime::RetryOn;
    /// assert!(RetryOn::none().status(502).contains_status(502));
    /// ```
    pub const fn status(mut self, status: u16) -> Self {
        let fixable = ErrorKind::from_status(status).never_retryable_reason().is_none();
        if status >= 400 && status <= 599 && fixable {
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
    /// use llm_retry_runtime::{ErrorKind, RetryOn};
    /// assert!(!RetryOn::DEFAULT.contains_kind(ErrorKind::Auth));
    /// ```
    pub const fn contains_kind(&self, kind: ErrorKind) -> bool {
        self.kinds & (1 << kind.index()) != 0
    }

    /// Whether `status` is in the set.
    ///
    /// ```
    /// assert!(!llm_retry_runtime::RetryOn::DEFAULT.contains_status(503));
    /// ```
    pub const fn contains_status(&self, status: u16) -> bool {
        if status < 400 || status > 599 {
            return false;
        }
        let i = (status - 400) as usize;
        self.statuses[i / 64] & (1 << (i % 64)) != 0
    }

    /// Whether this set retries the classified failure.
    ///
    /// ```
    /// use llm_retry_runtime::{Classification, ErrorKind, RetryOn};
    /// let on = RetryOn::none().status(429);
    /// assert!(on.matches(&Classification::new(ErrorKind::RateLimited).with_status(429)));
    /// assert!(!on.matches(&Classification::new(ErrorKind::QuotaExhausted).with_status(429)));
    /// ```
    pub const fn matches(&self, c: &Classification) -> bool {
        if self.contains_kind(c.kind) {
            return true;
        }
        match c.status {
            Some(s) => self.contains_status(s) && c.kind.never_retryable_reason().is_none(),
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

/// What a per-kind rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Kind(ErrorKind),
    Status(u16),
}

/// A per-kind (or per-status) override: its own attempt limit and backoff.
///
/// The article's conditional table, in one policy:
///
/// ```
/// use llm_retry_runtime::{Backoff, ErrorKind, Policy, Rule};
/// use std::time::Duration;
///
/// let exp = Backoff::Exponential {
///     initial: Duration::from_secs(1),
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
    target: Target,
    max_attempts: Option<u32>,
    backoff: Option<Backoff>,
    jitter: Option<Jitter>,
}

impl Rule {
    /// A rule for every failure of `kind`.
    ///
    /// ```
    /// let r = llm_retry_runtime::Rule::kind(llm_retry_runtime::ErrorKind::RateLimited).max_attempts(3);
    /// assert_eq!(r.attempt_limit(), Some(3));
    /// ```
    pub const fn kind(kind: ErrorKind) -> Self {
        Rule { target: Target::Kind(kind), max_attempts: None, backoff: None, jitter: None }
    }

    /// A rule for every failure with HTTP `status`. Status rules win over kind rules.
    ///
    /// ```
    /// let r = llm_retry_runtime::Rule::status(502).max_attempts(2);
    /// assert_eq!(r.attempt_limit(), Some(2));
    /// ```
    pub const fn status(status: u16) -> Self {
        Rule { target: Target::Status(status), max_attempts: None, backoff: None, jitter: None }
    }

    /// At most `n` attempts when every failure is of this kind: the failure that would make
    /// the `n`-th of its kind gives up instead of retrying.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Rule::status(500).max_attempts(4).attempt_limit(), Some(4));
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// The backoff used after failures of this kind.
    ///
    /// ```
    /// use llm_retry_runtime::{Backoff, Rule};
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
    /// use llm_retry_runtime::{Jitter, Rule};
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
    /// assert_eq!(llm_retry_runtime::Rule::status(500).attempt_limit(), None);
    /// ```
    pub const fn attempt_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    const fn applies_to(&self, c: &Classification) -> bool {
        match (self.target, c.status) {
            (Target::Status(s), Some(cs)) => s == cs,
            (Target::Status(_), None) => false,
            (Target::Kind(k), _) => k as u8 == c.kind as u8,
        }
    }

    const fn is_status(&self) -> bool {
        matches!(self.target, Target::Status(_))
    }
}

/// Why a policy is invalid. Returned by [`PolicyBuilder::build`]; never a panic.
///
/// ```
/// use llm_retry_runtime::{Policy, PolicyError};
/// assert_eq!(Policy::builder().max_attempts(0).build().unwrap_err(), PolicyError::ZeroAttempts);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// The cap is below the first delay (or the floor).
    MaxDelayBelowInitial,
    /// The multiplier is NaN, infinite or below 1.
    InvalidMultiplier,
    /// The proportional jitter factor is NaN, infinite or negative.
    InvalidJitterFactor,
    /// `max_retry_after` is zero.
    ZeroMaxRetryAfter,
    /// More rules than [`MAX_RULES`].
    TooManyRules,
    /// A rule has `max_attempts = 0`.
    ZeroRuleAttempts,
    /// A rule's `max_attempts` is above [`MAX_RULE_ATTEMPTS`].
    RuleAttemptsTooMany,
    /// Two rules for the same kind or status.
    DuplicateRule,
    /// A rule for a kind or status the policy does not retry.
    RuleForUnretried,
    /// A kind that retrying can never fix was listed as retryable.
    NeverRetryableKind(ErrorKind),
    /// A status outside 400..=599, or one that retrying can never fix.
    InvalidStatus(u16),
}

impl PolicyError {
    /// The error as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_runtime::PolicyError::ZeroAttempts.message().contains("at least 1"));
    /// ```
    pub const fn message(&self) -> &'static str {
        match self {
            PolicyError::ZeroAttempts => {
                "max_attempts counts attempts and must be at least 1; use 1 to disable retries"
            }
            PolicyError::MaxDelayBelowInitial => "max_delay must be at least the first delay (and the min_delay)",
            PolicyError::InvalidMultiplier => "the multiplier must be a finite number of at least 1.0, such as 2.0",
            PolicyError::InvalidJitterFactor => {
                "the proportional jitter factor must be a finite number of at least 0, such as 0.25"
            }
            PolicyError::ZeroMaxRetryAfter => {
                "max_retry_after must be above zero; to ignore Retry-After, turn it off instead"
            }
            PolicyError::TooManyRules => "a policy holds at most 6 per-kind rules",
            PolicyError::ZeroRuleAttempts => "a rule's max_attempts must be at least 1",
            PolicyError::RuleAttemptsTooMany => {
                "a rule's max_attempts is at most 65535; to retry longer, bound the call with a deadline"
            }
            PolicyError::DuplicateRule => "two rules name the same kind or status; merge them",
            PolicyError::RuleForUnretried => {
                "a rule names a kind or status that the policy does not retry; add it to retry_on"
            }
            PolicyError::NeverRetryableKind(_) => "this kind can never succeed on a retry; remove it from retry_on",
            PolicyError::InvalidStatus(_) => {
                "only error statuses that a retry can fix (400..=599, not 400, 401, 403, 404, 413, 422) can be retried"
            }
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::NeverRetryableKind(k) => {
                write!(f, "{k} is never retried: {}", k.never_retryable_reason().unwrap_or(""))
            }
            PolicyError::InvalidStatus(s) => write!(f, "status {s}: {}", self.message()),
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A validated retry policy. Build one with [`Policy::builder`], usually as a `const`.
///
/// ```
/// use llm_retry_runtime::{Backoff, Jitter, Policy};
/// use std::time::Duration;
///
/// const POLICY: Policy = match Policy::builder()
///     .max_attempts(5)
///     .backoff(Backoff::Exponential {
///         initial: Duration::from_millis(250),
///         multiplier: 2.0,
///         min_delay: Duration::ZERO,
///         max_delay: Duration::from_secs(10),
///     })
///     .jitter(Jitter::Full)
///     .build()
/// {
///     Ok(p) => p,
///     Err(e) => panic!("{}", e.message()),
/// };
/// assert_eq!(POLICY.max_attempts(), 5);
/// ```
#[derive(Clone, Copy)]
pub struct Policy {
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    pub(crate) jitter: Jitter,
    pub(crate) on: RetryOn,
    rules: [Option<Rule>; MAX_RULES],
    pub(crate) respect_retry_after: bool,
    pub(crate) max_retry_after: Duration,
    pub(crate) wall_clock: fn() -> SystemTime,
}

/// Builds a [`Policy`]. Every method is a `const fn`; [`build`](Self::build) validates.
///
/// The defaults are the LLM defaults: 4 attempts, exponential backoff from 500 ms doubling up
/// to 20 s with full jitter, the official SDKs' retryable set, and Retry-After honoured up to
/// 120 s.
///
/// ```
/// use llm_retry_runtime::Policy;
/// let p = Policy::builder().build().unwrap();
/// assert_eq!(p.max_attempts(), 4);
/// ```
#[derive(Clone, Copy)]
pub struct PolicyBuilder {
    policy: Policy,
    rule_len: usize,
    too_many_rules: bool,
}

impl Policy {
    /// The LLM defaults, described at [`PolicyBuilder`].
    pub const DEFAULT: Policy = Policy {
        max_attempts: 4,
        backoff: Backoff::DEFAULT_EXPONENTIAL,
        jitter: Jitter::Full,
        on: RetryOn::DEFAULT,
        rules: [None; MAX_RULES],
        respect_retry_after: true,
        max_retry_after: Duration::from_secs(120),
        wall_clock: SystemTime::now,
    };

    /// A builder starting from the LLM defaults.
    ///
    /// ```
    /// let p = llm_retry_runtime::Policy::builder().max_attempts(2).build().unwrap();
    /// assert_eq!(p.max_attempts(), 2);
    /// ```
    pub const fn builder() -> PolicyBuilder {
        PolicyBuilder { policy: Policy::DEFAULT, rule_len: 0, too_many_rules: false }
    }

    /// The most attempts one call makes, the first included.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Policy::DEFAULT.max_attempts(), 4);
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The default backoff (rules may override it).
    ///
    /// ```
    /// let b = llm_retry_runtime::Policy::DEFAULT.backoff();
    /// assert_eq!(b.cap(), std::time::Duration::from_secs(20));
    /// ```
    pub const fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The default jitter (rules may override it).
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Policy::DEFAULT.jitter(), llm_retry_runtime::Jitter::Full);
    /// ```
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// What the policy retries.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, Policy};
    /// assert!(Policy::DEFAULT.retry_on().contains_kind(ErrorKind::Timeout));
    /// ```
    pub const fn retry_on(&self) -> RetryOn {
        self.on
    }

    /// The longest Retry-After hint the policy waits for; above it, the call gives up.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::Policy::DEFAULT.max_retry_after().as_secs(), 120);
    /// ```
    pub const fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The rule that governs a classified failure: a status rule first, then a kind rule.
    pub(crate) fn rule_for(&self, c: &Classification) -> Option<(usize, &Rule)> {
        let mut kind_rule = None;
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(r) = r {
                if r.applies_to(c) {
                    if r.is_status() {
                        return Some((i, r));
                    }
                    kind_rule.get_or_insert((i, r));
                }
            }
        }
        kind_rule
    }

    /// The backoff and jitter in force for a rule (or the policy's own).
    pub(crate) fn backoff_for(&self, rule: Option<&Rule>) -> (Backoff, Jitter) {
        let backoff = rule.and_then(|r| r.backoff).unwrap_or(self.backoff);
        let jitter = rule.and_then(|r| r.jitter).unwrap_or(self.jitter);
        (backoff, jitter)
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .field("retry_on", &self.on)
            .field("rules", &self.rules.iter().flatten().collect::<Vec<_>>())
            .field("respect_retry_after", &self.respect_retry_after)
            .field("max_retry_after", &self.max_retry_after)
            .finish_non_exhaustive()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::DEFAULT
    }
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PolicyBuilder").field(&self.policy).finish()
    }
}

const fn check_backoff(b: &Backoff) -> Result<(), PolicyError> {
    match *b {
        Backoff::None | Backoff::Fixed { .. } => Ok(()),
        Backoff::Linear { start, max_delay, .. } => {
            if max_delay.as_nanos() < start.as_nanos() {
                Err(PolicyError::MaxDelayBelowInitial)
            } else {
                Ok(())
            }
        }
        Backoff::Exponential { initial, multiplier, min_delay, max_delay } => {
            if multiplier.is_nan() || multiplier.is_infinite() || multiplier < 1.0 {
                Err(PolicyError::InvalidMultiplier)
            } else if max_delay.as_nanos() < initial.as_nanos() || max_delay.as_nanos() < min_delay.as_nanos() {
                Err(PolicyError::MaxDelayBelowInitial)
            } else {
                Ok(())
            }
        }
        Backoff::Decorrelated { base, max_delay } => {
            if max_delay.as_nanos() < base.as_nanos() {
                Err(PolicyError::MaxDelayBelowInitial)
            } else {
                Ok(())
            }
        }
    }
}

const fn check_jitter(j: &Jitter) -> Result<(), PolicyError> {
    match *j {
        Jitter::Proportional { factor } => {
            if factor.is_nan() || factor.is_infinite() || factor < 0.0 {
                Err(PolicyError::InvalidJitterFactor)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

const fn same_target(a: Target, b: Target) -> bool {
    match (a, b) {
        (Target::Kind(x), Target::Kind(y)) => x as u8 == y as u8,
        (Target::Status(x), Target::Status(y)) => x == y,
        _ => false,
    }
}

impl PolicyBuilder {
    /// The most attempts one call makes, the first included. At least 1.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Policy::builder().max_attempts(1).build().is_ok());
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.policy.max_attempts = n;
        self
    }

    /// The backoff between attempts.
    ///
    /// ```
    /// use llm_retry_runtime::{Backoff, Policy};
    /// let p = Policy::builder().backoff(Backoff::Fixed { delay: std::time::Duration::from_secs(1) }).build();
    /// assert!(p.is_ok());
    /// ```
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.policy.backoff = backoff;
        self
    }

    /// The jitter applied to every backoff delay.
    ///
    /// ```
    /// use llm_retry_runtime::{Jitter, Policy};
    /// assert!(Policy::builder().jitter(Jitter::Equal).build().is_ok());
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// What to retry; replaces the default set.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, Policy, RetryOn};
    /// let p = Policy::builder().retry_on(RetryOn::none().kind(ErrorKind::RateLimited)).build();
    /// assert!(p.is_ok());
    /// assert!(Policy::builder().retry_on(RetryOn::none().kind(ErrorKind::Auth)).build().is_err());
    /// ```
    pub const fn retry_on(mut self, on: RetryOn) -> Self {
        self.policy.on = on;
        self
    }

    /// Adds a per-kind rule. At most [`MAX_RULES`]; each must name something retried.
    ///
    /// ```
    /// use llm_retry_runtime::{ErrorKind, Policy, Rule};
    /// let p = Policy::builder().rule(Rule::kind(ErrorKind::RateLimited).max_attempts(3)).build();
    /// assert!(p.is_ok());
    /// ```
    pub const fn rule(mut self, rule: Rule) -> Self {
        if self.rule_len < MAX_RULES {
            self.policy.rules[self.rule_len] = Some(rule);
            self.rule_len += 1;
        } else {
            self.too_many_rules = true;
        }
        self
    }

    /// Whether to honour Retry-After and the other rate-limit headers (default: yes).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Policy::builder().respect_retry_after(false).build().is_ok());
    /// ```
    pub const fn respect_retry_after(mut self, yes: bool) -> Self {
        self.policy.respect_retry_after = yes;
        self
    }

    /// The longest Retry-After the policy waits for (default 120 s). A longer hint, such as
    /// an exhausted quota's hour, gives up at once and returns the error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = llm_retry_runtime::Policy::builder().max_retry_after(Duration::from_secs(30)).build().unwrap();
    /// assert_eq!(p.max_retry_after(), Duration::from_secs(30));
    /// ```
    pub const fn max_retry_after(mut self, max: Duration) -> Self {
        self.policy.max_retry_after = max;
        self
    }

    /// The wall clock that HTTP-date Retry-After hints are compared with (default
    /// [`SystemTime::now`]). Tests inject a fixed clock here.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// fn fixed() -> SystemTime { SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) }
    /// assert!(llm_retry_runtime::Policy::builder().wall_clock(fixed).build().is_ok());
    /// ```
    pub const fn wall_clock(mut self, now: fn() -> SystemTime) -> Self {
        self.policy.wall_clock = now;
        self
    }

    /// Validates and returns the policy, or says what is wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{Backoff, Policy, PolicyError};
    /// let bad = Policy::builder().backoff(Backoff::Exponential {
    ///     initial: std::time::Duration::from_secs(1),
    ///     multiplier: f64::NAN,
    ///     min_delay: std::time::Duration::ZERO,
    ///     max_delay: std::time::Duration::from_secs(5),
    /// });
    /// assert_eq!(bad.build().unwrap_err(), PolicyError::InvalidMultiplier);
    /// ```
    pub const fn build(self) -> Result<Policy, PolicyError> {
        let p = self.policy;
        if p.max_attempts == 0 {
            return Err(PolicyError::ZeroAttempts);
        }
        if let Err(e) = check_backoff(&p.backoff) {
            return Err(e);
        }
        if let Err(e) = check_jitter(&p.jitter) {
            return Err(e);
        }
        match p.on.invalid {
            Invalid::None => {}
            Invalid::Kind(k) => return Err(PolicyError::NeverRetryableKind(k)),
            Invalid::Status(s) => return Err(PolicyError::InvalidStatus(s)),
        }
        if p.max_retry_after.is_zero() {
            return Err(PolicyError::ZeroMaxRetryAfter);
        }
        if self.too_many_rules {
            return Err(PolicyError::TooManyRules);
        }
        let mut i = 0;
        while i < self.rule_len {
            if let Some(r) = &p.rules[i] {
                match r.max_attempts {
                    Some(0) => return Err(PolicyError::ZeroRuleAttempts),
                    Some(n) if n > MAX_RULE_ATTEMPTS => return Err(PolicyError::RuleAttemptsTooMany),
                    _ => {}
                }
                if let Some(b) = &r.backoff {
                    if let Err(e) = check_backoff(b) {
                        return Err(e);
                    }
                }
                if let Some(j) = &r.jitter {
                    if let Err(e) = check_jitter(j) {
                        return Err(e);
                    }
                }
                let retried = match r.target {
                    Target::Kind(k) => p.on.contains_kind(k),
                    Target::Status(s) => {
                        p.on.contains_status(s)
                            || (s >= 400 && s <= 599 && p.on.contains_kind(ErrorKind::from_status(s)))
                    }
                };
                if !retried {
                    return Err(PolicyError::RuleForUnretried);
                }
                let mut j = 0;
                while j < i {
                    if let Some(o) = &p.rules[j] {
                        if same_target(o.target, r.target) {
                            return Err(PolicyError::DuplicateRule);
                        }
                    }
                    j += 1;
                }
            }
            i += 1;
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_policies_are_errors() {
        let exp = |initial: u64, m: f64, max: u64| Backoff::Exponential {
            initial: Duration::from_millis(initial),
            multiplier: m,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(max),
        };
        let b = Policy::builder;
        assert_eq!(b().max_attempts(0).build().unwrap_err(), PolicyError::ZeroAttempts);
        assert_eq!(b().backoff(exp(100, 2.0, 50)).build().unwrap_err(), PolicyError::MaxDelayBelowInitial);
        for m in [f64::NAN, -1.0, 0.0, 0.5, f64::INFINITY] {
            assert_eq!(b().backoff(exp(1, m, 5)).build().unwrap_err(), PolicyError::InvalidMultiplier, "{m}");
        }
        assert_eq!(
            b().jitter(Jitter::Proportional { factor: -0.1 }).build().unwrap_err(),
            PolicyError::InvalidJitterFactor
        );
        assert_eq!(b().max_retry_after(Duration::ZERO).build().unwrap_err(), PolicyError::ZeroMaxRetryAfter);
        assert_eq!(
            b().retry_on(RetryOn::none().kind(ErrorKind::QuotaExhausted)).build().unwrap_err(),
            PolicyError::NeverRetryableKind(ErrorKind::QuotaExhausted)
        );
        for s in [200, 302, 400, 401, 403, 404, 600, 0] {
            assert_eq!(b().retry_on(RetryOn::none().status(s)).build().unwrap_err(), PolicyError::InvalidStatus(s));
        }
        let rl = Rule::kind(ErrorKind::RateLimited);
        assert_eq!(b().rule(rl.max_attempts(0)).build().unwrap_err(), PolicyError::ZeroRuleAttempts);
        assert_eq!(b().rule(rl).rule(rl).build().unwrap_err(), PolicyError::DuplicateRule);
        assert_eq!(
            b().retry_on(RetryOn::none().kind(ErrorKind::Timeout)).rule(rl).build().unwrap_err(),
            PolicyError::RuleForUnretried
        );
        let mut many = b();
        for s in 500..507 {
            many = many.rule(Rule::status(s));
        }
        assert_eq!(many.build().unwrap_err(), PolicyError::TooManyRules);
        assert!(b().rule(Rule::status(502).backoff(exp(10, 0.1, 20))).build().is_err());
    }

    #[test]
    fn status_rules_win_over_kind_rules() {
        let p = Policy::builder()
            .rule(Rule::kind(ErrorKind::Server).max_attempts(3))
            .rule(Rule::status(502).max_attempts(2))
            .build()
            .unwrap();
        let c502 = Classification::new(ErrorKind::Server).with_status(502);
        let c500 = Classification::new(ErrorKind::Server).with_status(500);
        assert_eq!(p.rule_for(&c502).unwrap().1.attempt_limit(), Some(2));
        assert_eq!(p.rule_for(&c500).unwrap().1.attempt_limit(), Some(3));
        assert!(p.rule_for(&Classification::new(ErrorKind::Timeout)).is_none());
    }

    #[test]
    fn debug_lists_the_retryable_set() {
        let s = format!("{:?}", RetryOn::none().kind(ErrorKind::Timeout).status(503));
        assert_eq!(s, "[Timeout, 503]");
    }
}
