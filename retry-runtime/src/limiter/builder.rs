//! Configuring a [`Limiter`]: the `const` [`LimiterBuilder`] and the validated
//! [`LimiterConfig`] it builds.

#[cfg(doc)]
use super::Limiter;
use crate::limits::LimitError;
use std::time::Duration;

/// Builds a [`Limiter`]; every method is a `const fn` and [`build`](Self::build) validates
/// into a [`LimiterConfig`], which [`Limiter::from_config`] turns into the limiter. (A limiter
/// holds a `Mutex`, whose destructor a `match` in a `static` may not drop on every platform;
/// the validated config is a plain `Copy` value.)
///
/// ```
/// use llm_retry_runtime::Limiter;
/// static ANTHROPIC: Limiter = Limiter::from_config(
///     match Limiter::builder("anthropic").requests_per_minute(50.0).tokens_per_minute(40_000.0).build() {
///         Ok(c) => c,
///         Err(e) => panic!("{}", e.message()),
///     },
/// );
/// assert_eq!(ANTHROPIC.name(), "anthropic");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterBuilder {
    pub(super) name: &'static str,
    pub(super) beta: f64,
    pub(super) scale: f64,
    pub(super) min_rate: f64,
    pub(super) max_rate: f64,
    pub(super) requests_per_minute: f64,
    pub(super) tokens_per_minute: f64,
    pub(super) initial_window: u32,
    pub(super) max_pause: Duration,
    /// The bulkhead's cap on attempts in flight; 0 for none.
    pub(super) max_in_flight: u32,
    /// Whether `max_in_flight` was given (a given 0 is an error, not "no cap").
    pub(super) in_flight_given: bool,
}

/// A validated limiter configuration, from [`LimiterBuilder::build`].
///
/// ```
/// let c = llm_retry_runtime::Limiter::builder("x").build().unwrap();
/// assert_eq!(llm_retry_runtime::Limiter::from_config(c).name(), "x");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig(pub(super) LimiterBuilder);

/// The longest pause a limiter takes from one response unless told otherwise: the policy's
/// default `max_retry_after`.
const MAX_PAUSE: Duration = Duration::from_secs(120);

impl LimiterBuilder {
    pub(super) const fn new(name: &'static str) -> LimiterBuilder {
        LimiterBuilder {
            name,
            beta: 0.8,
            scale: 0.2,
            min_rate: 0.5,
            max_rate: 1_000_000.0,
            requests_per_minute: 0.0,
            tokens_per_minute: 0.0,
            initial_window: 10,
            max_pause: MAX_PAUSE,
            max_in_flight: 0,
            in_flight_given: false,
        }
    }

    /// The configured request rate, per second.
    pub(super) const fn configured_rate(&self) -> Option<f64> {
        if self.requests_per_minute > 0.0 { Some(self.requests_per_minute / 60.0) } else { None }
    }

    /// The configured token rate, per second.
    pub(super) const fn token_rate(&self) -> Option<f64> {
        if self.tokens_per_minute > 0.0 { Some(self.tokens_per_minute / 60.0) } else { None }
    }

    /// The factor a throttle multiplies the learned rate by, strictly between 0 and 1
    /// (default 0.8).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").beta(0.5).build().is_ok());
    /// ```
    pub const fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// How fast a learned rate climbs back after a cut: the share of the rate before the cut
    /// regained per second (default 0.2: a cut by β = 0.8 is made up in 1 s). Past that rate
    /// the climb doubles each second until the next throttle.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").scale(0.0).build().is_err());
    /// ```
    pub const fn scale(mut self, share_per_second: f64) -> Self {
        self.scale = share_per_second;
        self
    }

    /// The floor of the send rate, in requests per second (default 0.5).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").min_rate(1.0).build().is_ok());
    /// ```
    pub const fn min_rate(mut self, rps: f64) -> Self {
        self.min_rate = rps;
        self
    }

    /// The ceiling of the send rate, in requests per second.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").max_rate(0.1).build().is_err()); // below the floor
    /// ```
    pub const fn max_rate(mut self, rps: f64) -> Self {
        self.max_rate = rps;
        self
    }

    /// The provider's request limit, when known: the limiter paces at this rate from the first
    /// attempt (no slow start), and never above it. Throttles still cut below it; the
    /// provider's headers, when observed, win. `0` (the default) means unknown.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// let c = Limiter::builder("x").requests_per_minute(3_000.0).build().unwrap();
    /// assert_eq!(Limiter::from_config(c).rate(), Some(50.0));
    /// ```
    pub const fn requests_per_minute(mut self, rpm: f64) -> Self {
        self.requests_per_minute = rpm;
        self
    }

    /// The provider's token limit, when known: an attempt that declares its cost waits for
    /// room in a token bucket filled at this rate, with a minute's worth of room. `0` (the
    /// default) means unknown.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// let c = Limiter::builder("x").tokens_per_minute(60_000.0).build().unwrap();
    /// assert_eq!(Limiter::from_config(c).stats().token_rate, Some(1_000.0));
    /// ```
    pub const fn tokens_per_minute(mut self, tpm: f64) -> Self {
        self.tokens_per_minute = tpm;
        self
    }

    /// How many attempts a fresh limiter admits at once before it knows a rate (default 10,
    /// TCP's initial window); the window grows by one per success. `0` turns the slow start
    /// off: until the first throttle every attempt goes at once.
    ///
    /// ```
    /// use llm_retry_runtime::Limiter;
    /// let c = Limiter::builder("x").initial_window(0).build().unwrap();
    /// assert_eq!(Limiter::from_config(c).stats().window, None);
    /// ```
    pub const fn initial_window(mut self, attempts: u32) -> Self {
        self.initial_window = attempts;
        self
    }

    /// The longest a single response can pause the endpoint (a Retry-After, or a provider's
    /// reset with nothing left); default 120 s, the policy's default `max_retry_after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(llm_retry_runtime::Limiter::builder("x").max_pause(Duration::from_secs(30)).build().is_ok());
    /// ```
    pub const fn max_pause(mut self, pause: Duration) -> Self {
        self.max_pause = pause;
        self
    }

    /// A bulkhead: at most `attempts` requests in flight to the endpoint at once (default: no
    /// cap), in `1..`. An attempt holds its place from the moment the limiter lets it go until
    /// it ends, whatever ends it; the next waiter takes it then. A limiter that
    /// [`share`](super::Limiter::share)s its state caps the fleet, with leases in the store that
    /// expire if their worker dies.
    ///
    /// ```
    /// use llm_retry_runtime::{Limiter, limits::LimitError};
    /// assert!(Limiter::builder("x").max_in_flight(8).build().is_ok());
    /// assert_eq!(Limiter::builder("x").max_in_flight(0).build().unwrap_err(), LimitError::InvalidInFlight);
    /// ```
    pub const fn max_in_flight(mut self, attempts: u32) -> Self {
        self.max_in_flight = attempts;
        self.in_flight_given = true;
        self
    }

    /// The validated configuration (for [`Limiter::from_config`]), or why the arguments are
    /// wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{limits::LimitError, Limiter};
    /// assert_eq!(Limiter::builder("x").min_rate(f64::NAN).build().unwrap_err(), LimitError::InvalidRate);
    /// assert_eq!(Limiter::builder("x").requests_per_minute(-1.0).build().unwrap_err(), LimitError::InvalidRate);
    /// ```
    pub const fn build(self) -> Result<LimiterConfig, LimitError> {
        let rates_ok = self.min_rate > 0.0 && self.max_rate.is_finite() && self.min_rate <= self.max_rate;
        let limits_ok = self.requests_per_minute >= 0.0
            && self.requests_per_minute.is_finite()
            && self.tokens_per_minute >= 0.0
            && self.tokens_per_minute.is_finite()
            && self.tokens_per_minute <= 1e12
            && self.requests_per_minute <= 1e12;
        if !rates_ok || !limits_ok {
            return Err(LimitError::InvalidRate);
        }
        if !(self.beta > 0.0 && self.beta < 1.0) {
            return Err(LimitError::InvalidBeta);
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(LimitError::InvalidScale);
        }
        if self.max_pause.is_zero() || self.max_pause.as_secs() > 86_400 {
            return Err(LimitError::InvalidWindow);
        }
        if self.in_flight_given && self.max_in_flight == 0 {
            return Err(LimitError::InvalidInFlight);
        }
        Ok(LimiterConfig(self))
    }
}
