//! A breaker's settings, its builder, and why a setting is rejected.

use crate::store::BreakerRules;
use core::fmt;
use std::time::Duration;

/// When a breaker opens and for how long: validated by [`BreakerBuilder::build`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    pub(crate) consecutive_failures: u32,
    pub(crate) failure_rate: f64,
    pub(crate) min_calls: u32,
    pub(crate) window: Duration,
    pub(crate) cooldown: Duration,
    pub(crate) max_cooldown: Duration,
}

impl Settings {
    /// The defaults, for LLM APIs: open after 5 failures in a row, or when half the calls of
    /// a 60 s window fail once it holds 20; stay open 30 s; a server's own cooldown (a long
    /// Retry-After) is honoured up to 15 minutes.
    pub(crate) const DEFAULT: Settings = Settings {
        consecutive_failures: 5,
        failure_rate: 0.5,
        min_calls: 20,
        window: Duration::from_secs(60),
        cooldown: Duration::from_secs(30),
        max_cooldown: Duration::from_secs(15 * 60),
    };

    /// The settings as a store needs them.
    pub(crate) const fn rules(&self) -> BreakerRules {
        BreakerRules {
            consecutive_failures: self.consecutive_failures,
            failure_rate: self.failure_rate,
            min_calls: self.min_calls,
            window: self.window,
            cooldown: self.cooldown,
            max_cooldown: self.max_cooldown,
        }
    }

    /// The longest window or cooldown a builder accepts: a day.
    pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
}

/// Builds a [`Breaker`](super::Breaker); every method is a `const fn`, and
/// [`build`](Self::build) rejects a zero, negative or NaN setting with the field's name.
///
/// ```
/// use llm_retry_runtime::failover::Breaker;
/// use std::time::Duration;
/// static GPT4O: Breaker = match Breaker::builder("gpt-4o")
///     .consecutive_failures(3)
///     .cooldown(Duration::from_secs(10))
///     .build()
/// {
///     Ok(b) => b,
///     Err(e) => panic!("{}", e.message()),
/// };
/// assert_eq!(GPT4O.cooldown(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BreakerBuilder {
    pub(crate) name: &'static str,
    pub(crate) s: Settings,
}

impl BreakerBuilder {
    /// Opens after this many failed attempts in a row (default 5), in `1..`.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// assert_eq!(Breaker::builder("x").consecutive_failures(0).build().unwrap_err(), BreakerError::ConsecutiveFailures);
    /// ```
    pub const fn consecutive_failures(mut self, n: u32) -> Self {
        self.s.consecutive_failures = n;
        self
    }

    /// Opens when this share of the window's attempts failed (default 0.5), in `(0, 1]`.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// assert_eq!(Breaker::builder("x").failure_rate(f64::NAN).build().unwrap_err(), BreakerError::FailureRate);
    /// ```
    pub const fn failure_rate(mut self, rate: f64) -> Self {
        self.s.failure_rate = rate;
        self
    }

    /// The fewest attempts a window holds before its failure rate counts (default 20), in `1..`.
    ///
    /// ```
    /// assert!(llm_retry_runtime::failover::Breaker::builder("x").min_calls(10).build().is_ok());
    /// ```
    pub const fn min_calls(mut self, n: u32) -> Self {
        self.s.min_calls = n;
        self
    }

    /// How long a window of counted attempts lasts, from its first failure (default 60 s):
    /// above zero, at most a day.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// use std::time::Duration;
    /// assert_eq!(Breaker::builder("x").window(Duration::ZERO).build().unwrap_err(), BreakerError::Window);
    /// ```
    pub const fn window(mut self, window: Duration) -> Self {
        self.s.window = window;
        self
    }

    /// How long the breaker stays open before it lets a probe through (default 30 s): above
    /// zero, at most a day.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// use std::time::Duration;
    /// assert_eq!(Breaker::builder("x").cooldown(Duration::ZERO).build().unwrap_err(), BreakerError::Cooldown);
    /// ```
    pub const fn cooldown(mut self, cooldown: Duration) -> Self {
        self.s.cooldown = cooldown;
        self
    }

    /// The longest cooldown a server may ask for with a 429 or 529 whose Retry-After is over
    /// the policy's cap (default 15 min): at least `cooldown`, at most a day.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// use std::time::Duration;
    /// let b = Breaker::builder("x").cooldown(Duration::from_secs(60)).max_cooldown(Duration::from_secs(30));
    /// assert_eq!(b.build().unwrap_err(), BreakerError::MaxCooldown);
    /// ```
    pub const fn max_cooldown(mut self, max: Duration) -> Self {
        self.s.max_cooldown = max;
        self
    }

    /// The breaker, or the first setting that is wrong.
    ///
    /// ```
    /// use llm_retry_runtime::failover::{Breaker, BreakerError};
    /// let e = Breaker::builder("x").failure_rate(-0.5).build().unwrap_err();
    /// assert_eq!(e.field(), "failure_rate");
    /// ```
    pub const fn build(self) -> Result<super::Breaker, BreakerError> {
        let s = self.s;
        if s.consecutive_failures == 0 {
            return Err(BreakerError::ConsecutiveFailures);
        }
        if !(s.failure_rate > 0.0 && s.failure_rate <= 1.0) {
            return Err(BreakerError::FailureRate);
        }
        if s.min_calls == 0 {
            return Err(BreakerError::MinCalls);
        }
        if !in_range(s.window) {
            return Err(BreakerError::Window);
        }
        if !in_range(s.cooldown) {
            return Err(BreakerError::Cooldown);
        }
        if !in_range(s.max_cooldown) || s.max_cooldown.as_nanos() < s.cooldown.as_nanos() {
            return Err(BreakerError::MaxCooldown);
        }
        Ok(super::Breaker::with(self.name, s))
    }
}

const fn in_range(d: Duration) -> bool {
    !d.is_zero() && d.as_nanos() <= Settings::MAX_DURATION.as_nanos()
}

/// A breaker setting that [`BreakerBuilder::build`] rejects; [`field`](Self::field) names the
/// builder method. Never a panic.
///
/// ```
/// use llm_retry_runtime::failover::{Breaker, BreakerError};
/// let e = Breaker::builder("x").min_calls(0).build().unwrap_err();
/// assert_eq!(e, BreakerError::MinCalls);
/// assert!(e.to_string().starts_with("min_calls"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerError {
    /// `consecutive_failures` is zero.
    ConsecutiveFailures,
    /// `failure_rate` is NaN, not above zero, or above 1.
    FailureRate,
    /// `min_calls` is zero.
    MinCalls,
    /// `window` is zero or longer than a day.
    Window,
    /// `cooldown` is zero or longer than a day.
    Cooldown,
    /// `max_cooldown` is shorter than `cooldown`, or longer than a day.
    MaxCooldown,
}

impl BreakerError {
    /// The builder method whose value is wrong.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::failover::BreakerError::Window.field(), "window");
    /// ```
    pub const fn field(self) -> &'static str {
        match self {
            BreakerError::ConsecutiveFailures => "consecutive_failures",
            BreakerError::FailureRate => "failure_rate",
            BreakerError::MinCalls => "min_calls",
            BreakerError::Window => "window",
            BreakerError::Cooldown => "cooldown",
            BreakerError::MaxCooldown => "max_cooldown",
        }
    }

    /// The error as a sentence that names the fix.
    ///
    /// ```
    /// assert!(llm_retry_runtime::failover::BreakerError::FailureRate.message().contains("0.5"));
    /// ```
    pub const fn message(self) -> &'static str {
        match self {
            BreakerError::ConsecutiveFailures => {
                "consecutive_failures counts failed attempts and must be at least 1, such as 5"
            }
            BreakerError::FailureRate => "failure_rate is a share of attempts: above 0.0 and at most 1.0, such as 0.5",
            BreakerError::MinCalls => "min_calls counts attempts and must be at least 1, such as 20",
            BreakerError::Window => "window must be above zero and at most a day, such as 60 s",
            BreakerError::Cooldown => "cooldown must be above zero and at most a day, such as 30 s",
            BreakerError::MaxCooldown => "max_cooldown must be at least the cooldown and at most a day, such as 15 min",
        }
    }
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field(), self.message())
    }
}

impl std::error::Error for BreakerError {}
