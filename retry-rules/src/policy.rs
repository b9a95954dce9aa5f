//! The retry policy: a `const` value saying how many attempts, how long to wait, what to
//! retry, and how to treat Retry-After. Built once, shared by every call; validated by
//! [`PolicyBuilder::build`], whose checks are the one definition of a valid policy.

use crate::backoff::{Backoff, Jitter};
use crate::error::{MAX_RULE_ATTEMPTS, PolicyError, Problem};
use crate::kind::ErrorKind;
use crate::retry_on::{Invalid, RetryOn};
use crate::rule::{Rule, Target};
use core::fmt;
use std::time::{Duration, SystemTime};

/// The most per-kind rules one policy holds.
pub const MAX_RULES: usize = 6;

/// A validated retry policy. Build one with [`Policy::builder`], usually as a `const`.
///
/// ```
/// use llm_retry_rules::{Backoff, Jitter, Policy};
/// use std::time::Duration;
///
/// const POLICY: Policy = match Policy::builder()
///     .max_attempts(5)
///     .backoff(Backoff::Exponential {
///         base: Duration::from_millis(250),
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
    max_attempts: u32,
    backoff: Backoff,
    jitter: Jitter,
    on: RetryOn,
    rules: [Option<Rule>; MAX_RULES],
    respect_retry_after: bool,
    max_retry_after: Duration,
    wall_clock: fn() -> SystemTime,
}

/// Builds a [`Policy`]. Every method is a `const fn`; [`build`](Self::build) validates.
///
/// The defaults are the LLM defaults: 4 attempts, exponential backoff from 500 ms doubling up
/// to 20 s with full jitter, the official SDKs' retryable set, and Retry-After honoured up to
/// 120 s.
///
/// ```
/// use llm_retry_rules::Policy;
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
    /// let p = llm_retry_rules::Policy::builder().max_attempts(2).build().unwrap();
    /// assert_eq!(p.max_attempts(), 2);
    /// ```
    pub const fn builder() -> PolicyBuilder {
        PolicyBuilder { policy: Policy::DEFAULT, rule_len: 0, too_many_rules: false }
    }

    /// The most attempts one call makes, the first included.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Policy::DEFAULT.max_attempts(), 4);
    /// ```
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The default backoff (rules may override it).
    ///
    /// ```
    /// let b = llm_retry_rules::Policy::DEFAULT.backoff();
    /// assert_eq!(b.cap(), std::time::Duration::from_secs(20));
    /// ```
    pub const fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The default jitter (rules may override it).
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Policy::DEFAULT.jitter(), llm_retry_rules::Jitter::Full);
    /// ```
    pub const fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// What the policy retries.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, Policy};
    /// assert!(Policy::DEFAULT.retry_on().contains_kind(ErrorKind::Timeout));
    /// ```
    pub const fn retry_on(&self) -> RetryOn {
        self.on
    }

    /// The longest Retry-After hint the policy waits for; above it, the call gives up.
    ///
    /// ```
    /// assert_eq!(llm_retry_rules::Policy::DEFAULT.max_retry_after().as_secs(), 120);
    /// ```
    pub const fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// Whether Retry-After and the other rate-limit headers are honoured.
    ///
    /// ```
    /// assert!(llm_retry_rules::Policy::DEFAULT.respects_retry_after());
    /// ```
    pub const fn respects_retry_after(&self) -> bool {
        self.respect_retry_after
    }

    /// The wall clock that HTTP-date Retry-After hints are compared with.
    ///
    /// ```
    /// let now = (llm_retry_rules::Policy::DEFAULT.wall_clock())();
    /// assert!(now > std::time::SystemTime::UNIX_EPOCH);
    /// ```
    pub const fn wall_clock(&self) -> fn() -> SystemTime {
        self.wall_clock
    }

    /// The rule that governs a failure of `kind` with HTTP `status`, and its index: a status
    /// rule first, then a kind rule.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, Policy, Rule};
    /// let p = Policy::builder()
    ///     .rule(Rule::kind(ErrorKind::Server).max_attempts(3))
    ///     .rule(Rule::status(502).max_attempts(2))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(p.rule_for(ErrorKind::Server, Some(502)).map(|(i, _)| i), Some(1));
    /// assert_eq!(p.rule_for(ErrorKind::Server, Some(500)).map(|(i, _)| i), Some(0));
    /// assert!(p.rule_for(ErrorKind::Timeout, None).is_none());
    /// ```
    pub fn rule_for(&self, kind: ErrorKind, status: Option<u16>) -> Option<(usize, &Rule)> {
        let mut kind_rule = None;
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(r) = r {
                if r.applies_to(kind, status) {
                    if r.is_status() {
                        return Some((i, r));
                    }
                    kind_rule.get_or_insert((i, r));
                }
            }
        }
        kind_rule
    }

    /// The backoff and jitter in force under `rule` (the policy's own where the rule sets none,
    /// or there is no rule).
    ///
    /// ```
    /// use llm_retry_rules::{Jitter, Policy};
    /// assert_eq!(Policy::DEFAULT.backoff_for(None), (Policy::DEFAULT.backoff(), Jitter::Full));
    /// ```
    pub fn backoff_for(&self, rule: Option<&Rule>) -> (Backoff, Jitter) {
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

impl PolicyBuilder {
    /// The most attempts one call makes, the first included. At least 1.
    ///
    /// ```
    /// assert!(llm_retry_rules::Policy::builder().max_attempts(1).build().is_ok());
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.policy.max_attempts = n;
        self
    }

    /// The backoff between attempts.
    ///
    /// ```
    /// use llm_retry_rules::{Backoff, Policy};
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
    /// use llm_retry_rules::{Jitter, Policy};
    /// assert!(Policy::builder().jitter(Jitter::Equal).build().is_ok());
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// What to retry; replaces the default set.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, Policy, RetryOn};
    /// let p = Policy::builder().retry_on(RetryOn::none().kind(ErrorKind::RateLimited)).build();
    /// assert!(p.is_ok());
    /// assert!(Policy::builder().retry_on(RetryOn::none().kind(ErrorKind::Auth)).build().is_err());
    /// ```
    pub const fn retry_on(mut self, on: RetryOn) -> Self {
        self.policy.on = on;
        self
    }

    /// Adds a per-kind rule. At most [`MAX_RULES`]; each must name something retried, and may
    /// allow no more attempts than the policy.
    ///
    /// ```
    /// use llm_retry_rules::{ErrorKind, Policy, Rule};
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
    /// assert!(llm_retry_rules::Policy::builder().respect_retry_after(false).build().is_ok());
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
    /// let p = llm_retry_rules::Policy::builder().max_retry_after(Duration::from_secs(30)).build().unwrap();
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
    /// assert!(llm_retry_rules::Policy::builder().wall_clock(fixed).build().is_ok());
    /// ```
    pub const fn wall_clock(mut self, now: fn() -> SystemTime) -> Self {
        self.policy.wall_clock = now;
        self
    }

    /// Validates and returns the policy, or says what is wrong: the first of
    /// [`problems`](Self::problems).
    ///
    /// ```
    /// use llm_retry_rules::{Backoff, Policy, Problem};
    /// let bad = Policy::builder().backoff(Backoff::Exponential {
    ///     base: std::time::Duration::from_secs(1),
    ///     multiplier: f64::NAN,
    ///     min_delay: std::time::Duration::ZERO,
    ///     max_delay: std::time::Duration::from_secs(5),
    /// });
    /// assert_eq!(bad.build().unwrap_err(), Problem::InvalidMultiplier);
    /// ```
    pub const fn build(self) -> Result<Policy, PolicyError> {
        let mut step = 0;
        while let Some(checked) = self.check(step) {
            if let Err(e) = checked {
                return Err(e);
            }
            step += 1;
        }
        Ok(self.policy)
    }

    /// Every problem with these settings, in the order [`build`](Self::build) checks them
    /// (it returns the first). The attribute reports them all, each at the key that caused it.
    ///
    /// ```
    /// use llm_retry_rules::{Jitter, Policy, Problem};
    /// let bad = Policy::builder().max_attempts(0).jitter(Jitter::Proportional { factor: -1.0 });
    /// let problems: Vec<Problem> = bad.problems().iter().map(|e| e.problem()).collect();
    /// assert_eq!(problems, [Problem::ZeroAttempts, Problem::InvalidJitterFactor]);
    /// ```
    pub fn problems(&self) -> Vec<PolicyError> {
        (0..).map_while(|step| self.check(step)).filter_map(Result::err).collect()
    }

    /// Check number `step` of the sequence that [`build`](Self::build) and
    /// [`problems`](Self::problems) share; `None` past the last.
    const fn check(&self, step: usize) -> Option<Result<(), PolicyError>> {
        /// The checks of the policy's own settings, numbered 0 to 5.
        const OWN: usize = 6;
        /// The checks of each rule.
        const PER_RULE: usize = 5;
        let p = &self.policy;
        let own = match step {
            0 => {
                if p.max_attempts == 0 {
                    Err(Problem::ZeroAttempts)
                } else {
                    Ok(())
                }
            }
            1 => p.backoff.check(),
            2 => p.jitter.check(),
            3 => match p.on.invalid {
                Invalid::None => Ok(()),
                Invalid::Kind(k) => Err(Problem::NeverRetryableKind(k)),
                Invalid::Status(s) => Err(Problem::InvalidStatus(s)),
            },
            4 => {
                if p.max_retry_after.is_zero() {
                    Err(Problem::ZeroMaxRetryAfter)
                } else {
                    Ok(())
                }
            }
            5 => {
                if self.too_many_rules {
                    Err(Problem::TooManyRules)
                } else {
                    Ok(())
                }
            }
            _ => {
                let i = (step - OWN) / PER_RULE;
                if i >= self.rule_len {
                    return None;
                }
                let checked = match &p.rules[i] {
                    Some(rule) => self.check_rule(i, rule, (step - OWN) % PER_RULE),
                    None => Ok(()),
                };
                return Some(match checked {
                    Ok(()) => Ok(()),
                    Err(problem) => Err(PolicyError::rule_at(i, problem)),
                });
            }
        };
        Some(match own {
            Ok(()) => Ok(()),
            Err(problem) => Err(PolicyError::policy(problem)),
        })
    }

    /// Check `which` of the rule at index `i`.
    const fn check_rule(&self, i: usize, rule: &Rule, which: usize) -> Result<(), Problem> {
        let p = &self.policy;
        match which {
            0 => match rule.max_attempts {
                Some(0) => Err(Problem::ZeroRuleAttempts),
                Some(n) if n > MAX_RULE_ATTEMPTS => Err(Problem::RuleAttemptsTooMany),
                Some(n) if n > p.max_attempts => Err(Problem::RuleAttemptsAboveMax),
                _ => Ok(()),
            },
            1 => match &rule.backoff {
                Some(b) => b.check(),
                None => Ok(()),
            },
            2 => match &rule.jitter {
                Some(j) => j.check(),
                None => Ok(()),
            },
            3 => {
                let retried = match rule.target {
                    Target::Kind(k) => p.on.contains_kind(k),
                    Target::Status(s) => {
                        p.on.contains_status(s)
                            || (s >= 400 && s <= 599 && p.on.contains_kind(ErrorKind::from_status(s)))
                    }
                };
                if retried { Ok(()) } else { Err(Problem::RuleForUnretried) }
            }
            _ => {
                let mut j = 0;
                while j < i {
                    if let Some(other) = &p.rules[j] {
                        if other.target.same_as(rule.target) {
                            return Err(Problem::DuplicateRule);
                        }
                    }
                    j += 1;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_policies_are_errors() {
        let exp = |initial: u64, m: f64, max: u64| Backoff::Exponential {
            base: Duration::from_millis(initial),
            multiplier: m,
            min_delay: Duration::ZERO,
            max_delay: Duration::from_millis(max),
        };
        let b = Policy::builder;
        assert_eq!(b().max_attempts(0).build().unwrap_err(), Problem::ZeroAttempts);
        assert_eq!(b().backoff(exp(100, 2.0, 50)).build().unwrap_err(), Problem::MaxDelayBelowBase);
        for m in [f64::NAN, -1.0, 0.0, 0.5, f64::INFINITY] {
            assert_eq!(b().backoff(exp(1, m, 5)).build().unwrap_err(), Problem::InvalidMultiplier, "{m}");
        }
        assert_eq!(
            b().jitter(Jitter::Proportional { factor: -0.1 }).build().unwrap_err(),
            Problem::InvalidJitterFactor
        );
        assert_eq!(b().max_retry_after(Duration::ZERO).build().unwrap_err(), Problem::ZeroMaxRetryAfter);
        assert_eq!(
            b().retry_on(RetryOn::none().kind(ErrorKind::QuotaExhausted)).build().unwrap_err(),
            Problem::NeverRetryableKind(ErrorKind::QuotaExhausted)
        );
        for s in [200, 302, 400, 401, 403, 404, 600, 0] {
            assert_eq!(b().retry_on(RetryOn::none().status(s)).build().unwrap_err(), Problem::InvalidStatus(s));
        }
        let rl = Rule::kind(ErrorKind::RateLimited);
        assert_eq!(b().rule(rl.max_attempts(0)).build().unwrap_err(), Problem::ZeroRuleAttempts);
        assert_eq!(b().rule(rl).rule(rl).build().unwrap_err(), Problem::DuplicateRule);
        assert_eq!(
            b().retry_on(RetryOn::none().kind(ErrorKind::Timeout)).rule(rl).build().unwrap_err(),
            Problem::RuleForUnretried
        );
        let mut many = b();
        for s in 500..507 {
            many = many.rule(Rule::status(s));
        }
        assert_eq!(many.build().unwrap_err(), Problem::TooManyRules);
        assert!(b().rule(Rule::status(502).backoff(exp(10, 0.1, 20))).build().is_err());
        // The bounds the attribute has always had, now the builder's too.
        let ms = Duration::from_millis;
        assert_eq!(b().backoff(Backoff::Fixed { delay: Duration::ZERO }).build().unwrap_err(), Problem::ZeroDelay);
        assert_eq!(b().backoff(exp(0, 2.0, 50)).build().unwrap_err(), Problem::ZeroBase);
        assert_eq!(
            b().backoff(Backoff::Decorrelated { base: ms(0), max_delay: ms(5) }).build().unwrap_err(),
            Problem::ZeroBase
        );
        assert_eq!(
            b().backoff(Backoff::Linear { base: ms(0), increment: ms(1), max_delay: ms(0) }).build().unwrap_err(),
            Problem::ZeroMaxDelay
        );
        assert!(b().backoff(Backoff::Linear { base: ms(0), increment: ms(1), max_delay: ms(5) }).build().is_ok());
        let floor_above_cap =
            Backoff::Exponential { base: ms(1), multiplier: 2.0, min_delay: ms(60), max_delay: ms(50) };
        assert_eq!(b().backoff(floor_above_cap).build().unwrap_err(), Problem::MinDelayAboveMaxDelay);
        assert_eq!(
            b().jitter(Jitter::Proportional { factor: 10.5 }).build().unwrap_err(),
            Problem::InvalidJitterFactor
        );
        assert!(b().jitter(Jitter::Proportional { factor: 10.0 }).build().is_ok());
        assert_eq!(b().rule(rl.max_attempts(5)).build().unwrap_err(), Problem::RuleAttemptsAboveMax);
        assert!(b().rule(rl.max_attempts(4)).build().is_ok());
    }

    #[test]
    fn problems_lists_every_problem_and_build_returns_the_first() {
        let rl = Rule::kind(ErrorKind::RateLimited);
        let bad = Policy::builder()
            .max_attempts(0)
            .max_retry_after(Duration::ZERO)
            .rule(rl.max_attempts(0))
            .rule(rl.jitter(Jitter::Proportional { factor: f64::NAN }));
        let all = bad.problems();
        let problems: Vec<(Problem, Option<usize>)> = all.iter().map(|e| (e.problem(), e.rule())).collect();
        assert_eq!(
            problems,
            [
                (Problem::ZeroAttempts, None),
                (Problem::ZeroMaxRetryAfter, None),
                (Problem::ZeroRuleAttempts, Some(0)),
                (Problem::InvalidJitterFactor, Some(1)),
                (Problem::DuplicateRule, Some(1)),
            ]
        );
        assert_eq!(bad.build().unwrap_err(), all[0]);
        assert!(Policy::builder().problems().is_empty());
    }

    #[test]
    fn status_rules_win_over_kind_rules() {
        let p = Policy::builder()
            .rule(Rule::kind(ErrorKind::Server).max_attempts(3))
            .rule(Rule::status(502).max_attempts(2))
            .build()
            .unwrap();
        assert_eq!(p.rule_for(ErrorKind::Server, Some(502)).unwrap().1.attempt_limit(), Some(2));
        assert_eq!(p.rule_for(ErrorKind::Server, Some(500)).unwrap().1.attempt_limit(), Some(3));
        assert!(p.rule_for(ErrorKind::Timeout, None).is_none());
    }

    #[test]
    fn debug_lists_the_retryable_set() {
        let s = format!("{:?}", RetryOn::none().kind(ErrorKind::Timeout).status(503));
        assert_eq!(s, "[Timeout, 503]");
    }
}
