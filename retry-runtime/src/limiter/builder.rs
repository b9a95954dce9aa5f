//! Configuring a [`Limiter`]: the `const` [`LimiterBuilder`] and the validated
//! [`LimiterConfig`] it builds.

#[cfg(doc)]
use super::Limiter;
use crate::limits::LimitError;

/// Builds a [`Limiter`]; every method is a `const fn` and [`build`](Self::build) validates
/// into a [`LimiterConfig`], which [`Limiter::from_config`] turns into the limiter. (A limiter
/// holds a `Mutex`, whose destructor a `match` in a `static` may not drop on every platform;
/// the validated config is a plain `Copy` value.)
///
/// ```
/// use llm_retry_runtime::Limiter;
/// static ANTHROPIC: Limiter = Limiter::from_config(match Limiter::builder("anthropic").max_rate(50.0).build() {
///     Ok(c) => c,
///     Err(e) => panic!("{}", e.message()),
/// });
/// assert_eq!(ANTHROPIC.name(), "anthropic");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterBuilder {
    pub(super) name: &'static str,
    pub(super) beta: f64,
    pub(super) scale: f64,
    pub(super) min_rate: f64,
    pub(super) max_rate: f64,
}

/// A validated limiter configuration, from [`LimiterBuilder::build`].
///
/// ```
/// let c = llm_retry_runtime::Limiter::builder("x").build().unwrap();
/// assert_eq!(llm_retry_runtime::Limiter::from_config(c).name(), "x");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LimiterConfig(pub(super) LimiterBuilder);

impl LimiterBuilder {
    /// The factor a throttle multiplies the rate by, strictly between 0 and 1 (AWS: 0.7).
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").beta(0.5).build().is_ok());
    /// ```
    pub const fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// CUBIC's scale constant C (AWS: 0.4): larger probes back up faster.
    ///
    /// ```
    /// assert!(llm_retry_runtime::Limiter::builder("x").scale(0.0).build().is_err());
    /// ```
    pub const fn scale(mut self, c: f64) -> Self {
        self.scale = c;
        self
    }

    /// The floor of the send rate, in requests per second (AWS: 0.5).
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

    /// The validated configuration (for [`Limiter::from_config`]), or why the arguments are
    /// wrong.
    ///
    /// ```
    /// use llm_retry_runtime::{limits::LimitError, Limiter};
    /// assert_eq!(Limiter::builder("x").min_rate(f64::NAN).build().unwrap_err(), LimitError::InvalidRate);
    /// ```
    pub const fn build(self) -> Result<LimiterConfig, LimitError> {
        let rates_ok = self.min_rate > 0.0 && self.max_rate.is_finite() && self.min_rate <= self.max_rate;
        if !rates_ok {
            return Err(LimitError::InvalidRate);
        }
        if !(self.beta > 0.0 && self.beta < 1.0) {
            return Err(LimitError::InvalidBeta);
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(LimitError::InvalidScale);
        }
        Ok(LimiterConfig(self))
    }
}
