//! One endpoint's configuration: its policy (the attribute's keys, at the top) and its
//! per-endpoint controls (`[limiter]`, `[budget]`, `[adaptive]`), each checked by its builder.

use crate::limits::{AdaptiveBuilder, BudgetBuilder, LimitError, LimiterBuilder, LimiterConfig};
use crate::{Adaptive, Budget, Limiter, Policy};
use core::fmt;
use llm_retry_rules::config::value::{Count, Human, Number, written};
use llm_retry_rules::config::{PolicySpec, SpecError, unknown_key};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// An endpoint's configuration: the policy its calls retry under, and the settings of its
/// limiter, budget and adaptive delay, when the file sets them. Read by
/// [`from_toml_str`](super::from_toml_str), [`from_json_str`](super::from_json_str) and
/// [`from_env`](super::from_env); it also deserializes inside an application's own
/// configuration.
///
/// ```toml
/// max = 5
/// base = "250ms"
/// on = ["RateLimited", "Overloaded", 503]
///
/// [limiter]
/// max_rate = 50.0
///
/// [budget]
/// ratio = 0.1
/// burst = 10
/// ```
///
/// ```
/// let c = llm_retry_runtime::config::from_toml_str("max = 5\n[budget]\nburst = 10").unwrap();
/// assert_eq!(c.policy.max_attempts(), 5);
/// assert_eq!(c.budget.unwrap().build()?.tokens(), 10.0);
/// assert!(c.limiter.is_none());
/// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The policy: the attribute's keys at the top of the file (the defaults where unset).
    pub policy: Policy,
    /// `[limiter]`: the client-side rate limiter's settings.
    pub limiter: Option<LimiterSettings>,
    /// `[budget]`: the retry budget's settings.
    pub budget: Option<BudgetSettings>,
    /// `[adaptive]`: the adaptive delay's settings.
    pub adaptive: Option<AdaptiveSettings>,
}

/// `[limiter]`: the endpoint's pacer: `requests_per_minute` and `tokens_per_minute` (the
/// provider's limits, when known), `initial_window` (the slow start's first attempts),
/// `max_pause` (the longest Retry-After pause, a duration), `max_in_flight` (the bulkhead's
/// cap on requests in flight), and the learning's `beta`,
/// `scale`, `min_rate` and `max_rate` (requests per second), each
/// [`Limiter::builder`]'s default where unset, checked by [`LimiterBuilder::build`] when read.
/// A limiter is named in code (the name is its metrics label): [`config`](Self::config)
/// makes the settings one.
///
/// ```
/// use llm_retry_runtime::Limiter;
/// let c = llm_retry_runtime::config::from_toml_str("[limiter]\nmax_rate = 20.0").unwrap();
/// let limiter = Limiter::from_config(c.limiter.unwrap().config("openai")?);
/// assert_eq!(limiter.name(), "openai");
/// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimiterSettings {
    requests_per_minute: Option<f64>,
    tokens_per_minute: Option<f64>,
    initial_window: Option<u32>,
    max_pause: Option<Duration>,
    max_in_flight: Option<u32>,
    beta: Option<f64>,
    scale: Option<f64>,
    min_rate: Option<f64>,
    max_rate: Option<f64>,
}

/// `[budget]`: `ratio` (retries earned per success) and `burst`, each [`Budget::builder`]'s
/// default where unset, checked by [`BudgetBuilder::build`] when read.
///
/// ```
/// let c = llm_retry_runtime::config::from_toml_str("[budget]\nratio = 0.2").unwrap();
/// assert_eq!(c.budget.unwrap().build()?.ratio(), 0.2);
/// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetSettings {
    ratio: Option<f64>,
    burst: Option<u32>,
}

/// `[adaptive]`: `window` (a duration, like `"5m"`) and `max_multiplier`, each
/// [`Adaptive::builder`]'s default where unset, checked by [`AdaptiveBuilder::build`] when read.
///
/// ```
/// let c = llm_retry_runtime::config::from_toml_str("[adaptive]\nwindow = \"1m\"").unwrap();
/// assert_eq!(c.adaptive.unwrap().build()?.window().as_secs(), 60);
/// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AdaptiveSettings {
    window: Option<Duration>,
    max_multiplier: Option<f64>,
}

impl LimiterSettings {
    fn builder(&self, name: &'static str) -> LimiterBuilder {
        let mut b = Limiter::builder(name);
        if let Some(v) = self.requests_per_minute {
            b = b.requests_per_minute(v);
        }
        if let Some(v) = self.tokens_per_minute {
            b = b.tokens_per_minute(v);
        }
        if let Some(v) = self.initial_window {
            b = b.initial_window(v);
        }
        if let Some(v) = self.max_pause {
            b = b.max_pause(v);
        }
        if let Some(v) = self.max_in_flight {
            b = b.max_in_flight(v);
        }
        if let Some(v) = self.beta {
            b = b.beta(v);
        }
        if let Some(v) = self.scale {
            b = b.scale(v);
        }
        if let Some(v) = self.min_rate {
            b = b.min_rate(v);
        }
        if let Some(v) = self.max_rate {
            b = b.max_rate(v);
        }
        b
    }

    /// The limiter configuration for the endpoint `name`, for [`Limiter::from_config`]. The
    /// settings were checked when they were read, by the same builder, so this does not fail
    /// for settings read from configuration.
    ///
    /// ```
    /// let c = llm_retry_runtime::config::from_toml_str("[limiter]\nbeta = 0.5").unwrap();
    /// let l = llm_retry_runtime::Limiter::from_config(c.limiter.unwrap().config("anthropic")?);
    /// assert_eq!(l.name(), "anthropic");
    /// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
    /// ```
    pub fn config(&self, name: &'static str) -> Result<LimiterConfig, LimitError> {
        self.builder(name).build()
    }
}

impl BudgetSettings {
    fn builder(&self) -> BudgetBuilder {
        let mut b = Budget::builder();
        if let Some(v) = self.ratio {
            b = b.ratio(v);
        }
        if let Some(v) = self.burst {
            b = b.burst(v);
        }
        b
    }

    /// A budget with these settings, from [`BudgetBuilder::build`]; it does not fail for
    /// settings read from configuration, which were checked when read.
    ///
    /// ```
    /// let c = llm_retry_runtime::config::from_toml_str("[budget]\nburst = 3").unwrap();
    /// assert_eq!(c.budget.unwrap().build()?.burst(), 3);
    /// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
    /// ```
    pub fn build(&self) -> Result<Budget, LimitError> {
        self.builder().build()
    }
}

impl AdaptiveSettings {
    fn builder(&self) -> AdaptiveBuilder {
        let mut b = Adaptive::builder();
        if let Some(v) = self.window {
            b = b.window(v);
        }
        if let Some(v) = self.max_multiplier {
            b = b.max_multiplier(v);
        }
        b
    }

    /// An adaptive delay with these settings, from [`AdaptiveBuilder::build`]; it does not
    /// fail for settings read from configuration, which were checked when read.
    ///
    /// ```
    /// let c = llm_retry_runtime::config::from_toml_str("[adaptive]\nmax_multiplier = 4").unwrap();
    /// assert_eq!(c.adaptive.unwrap().build()?.max_multiplier(), 4.0);
    /// # Ok::<(), llm_retry_runtime::limits::LimitError>(())
    /// ```
    pub fn build(&self) -> Result<Adaptive, LimitError> {
        self.builder().build()
    }
}

/// The key a [`LimitError`] is about, among those set (the first when several could be).
fn limit_key(e: LimitError, set: &[(&'static str, bool)]) -> &'static str {
    let candidates: &[&str] = match e {
        LimitError::InvalidRatio => &["ratio"],
        LimitError::InvalidBurst => &["burst"],
        LimitError::InvalidRate => &["requests_per_minute", "tokens_per_minute", "min_rate", "max_rate"],
        LimitError::InvalidBeta => &["beta"],
        LimitError::InvalidScale => &["scale"],
        LimitError::InvalidMultiplier => &["max_multiplier"],
        LimitError::InvalidWindow => &["window", "max_pause", "initial_window"],
        LimitError::InvalidInFlight => &["max_in_flight"],
    };
    candidates
        .iter()
        .copied()
        .find(|c| set.iter().any(|(k, on)| k == c && *on))
        .or(candidates.first().copied())
        .unwrap_or("")
}

/// Reads one section's keys: `read` takes a known key's value, and says `false` for an
/// unknown one.
fn read_section<'de, A, T>(
    mut map: A,
    valid: &[&str],
    mut out: T,
    mut read: impl FnMut(&mut T, &str, &mut A) -> Result<bool, A::Error>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
{
    while let Some(key) = map.next_key::<String>()? {
        if !read(&mut out, &key, &mut map)? {
            return Err(de::Error::custom(SpecError::at(key.as_str(), unknown_key(&key, valid))));
        }
    }
    Ok(out)
}

/// A number for `slot`, or an error if the key is set twice.
fn put<E: de::Error, T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(SpecError::at(key, format!("`{key}` is set twice; keep one"))));
    }
    *slot = Some(value);
    Ok(())
}

/// Checks settings with their builder; the error names the key.
fn checked<T, E: de::Error>(out: T, built: Result<(), LimitError>, set: &[(&'static str, bool)]) -> Result<T, E> {
    match built {
        Ok(()) => Ok(out),
        Err(e) => Err(E::custom(SpecError::at(limit_key(e, set), e.message()))),
    }
}

/// One section's `Deserialize`: a map visitor that reads its keys with `read_section` and
/// checks the result with its builder.
macro_rules! section {
    ($ty:ident, $expecting:literal, $keys:expr, |$out:ident, $key:ident, $map:ident| $read:expr, |$s:ident| $check:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        let $s = read_section(map, $keys, $ty::default(), |$out, $key, $map| $read)?;
                        $check
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

section!(
    LimiterSettings,
    "a limiter's settings, like { max_rate = 50.0 }",
    &[
        "requests_per_minute",
        "tokens_per_minute",
        "initial_window",
        "max_pause",
        "max_in_flight",
        "beta",
        "scale",
        "min_rate",
        "max_rate"
    ],
    |out, key, map| {
        let slot = match key {
            "initial_window" => {
                put(&mut out.initial_window, key, map.next_value::<Count>()?.0)?;
                return Ok(true);
            }
            "max_in_flight" => {
                put(&mut out.max_in_flight, key, map.next_value::<Count>()?.0)?;
                return Ok(true);
            }
            "max_pause" => {
                put(&mut out.max_pause, key, map.next_value::<Human>()?.0)?;
                return Ok(true);
            }
            "requests_per_minute" | "tokens_per_minute" => {
                let v = map.next_value::<Number>()?.0;
                // Zero is the builder's "not configured": written in a file, it is a mistake.
                if v == 0.0 {
                    let message = format!(
                        "a configured `{key}` must be above zero; remove it to have the rate read from the provider's headers or learned"
                    );
                    return Err(de::Error::custom(SpecError::at(key, message)));
                }
                let slot = if key == "requests_per_minute" {
                    &mut out.requests_per_minute
                } else {
                    &mut out.tokens_per_minute
                };
                put(slot, key, v)?;
                return Ok(true);
            }
            "beta" => &mut out.beta,
            "scale" => &mut out.scale,
            "min_rate" => &mut out.min_rate,
            "max_rate" => &mut out.max_rate,
            _ => return Ok(false),
        };
        put(slot, key, map.next_value::<Number>()?.0)?;
        Ok(true)
    },
    |s| {
        let set = [
            ("requests_per_minute", s.requests_per_minute.is_some()),
            ("tokens_per_minute", s.tokens_per_minute.is_some()),
            ("initial_window", s.initial_window.is_some()),
            ("max_pause", s.max_pause.is_some()),
            ("max_in_flight", s.max_in_flight.is_some()),
            ("beta", s.beta.is_some()),
            ("scale", s.scale.is_some()),
            ("min_rate", s.min_rate.is_some()),
            ("max_rate", s.max_rate.is_some()),
        ];
        checked(s, s.builder("config").build().map(drop), &set)
    }
);

section!(
    BudgetSettings,
    "a budget's settings, like { ratio = 0.1, burst = 5 }",
    &["ratio", "burst"],
    |out, key, map| {
        match key {
            "ratio" => put(&mut out.ratio, key, map.next_value::<Number>()?.0)?,
            "burst" => put(&mut out.burst, key, map.next_value::<Count>()?.0)?,
            _ => return Ok(false),
        }
        Ok(true)
    },
    |s| checked(s, s.builder().build().map(drop), &[("ratio", s.ratio.is_some()), ("burst", s.burst.is_some())])
);

section!(
    AdaptiveSettings,
    "an adaptive delay's settings, like { window = \"5m\", max_multiplier = 3.0 }",
    &["window", "max_multiplier"],
    |out, key, map| {
        match key {
            "window" => put(&mut out.window, key, map.next_value::<Human>()?.0)?,
            "max_multiplier" => put(&mut out.max_multiplier, key, map.next_value::<Number>()?.0)?,
            _ => return Ok(false),
        }
        Ok(true)
    },
    |s| {
        let set = [("window", s.window.is_some()), ("max_multiplier", s.max_multiplier.is_some())];
        checked(s, s.builder().build().map(drop), &set)
    }
);

/// The sections an endpoint's configuration holds besides its policy's keys.
pub(super) const SECTIONS: &[&str] = &["limiter", "budget", "adaptive"];

impl<'de> Deserialize<'de> for EndpointConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an endpoint's configuration: a policy's keys, like max = 5, and [limiter], [budget] or [adaptive]",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EndpointConfig, A::Error> {
                let mut spec = PolicySpec::default();
                let (mut limiter, mut budget, mut adaptive) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "limiter" => put(&mut limiter, &key, map.next_value()?)?,
                        "budget" => put(&mut budget, &key, map.next_value()?)?,
                        "adaptive" => put(&mut adaptive, &key, map.next_value()?)?,
                        _ if spec.read_key(&key, &mut map)? => {}
                        _ => {
                            let valid = [PolicySpec::KEYS, SECTIONS].concat();
                            return Err(de::Error::custom(SpecError::at(key.as_str(), unknown_key(&key, &valid))));
                        }
                    }
                }
                let policy = spec.build().map_err(de::Error::custom)?;
                Ok(EndpointConfig { policy, limiter, budget, adaptive })
            }
        }
        d.deserialize_map(V)
    }
}

/// Writes the keys that are set, durations in human units.
fn write_some<M: SerializeMap, T: Serialize>(map: &mut M, key: &str, v: Option<T>) -> Result<(), M::Error> {
    match v {
        Some(v) => map.serialize_entry(key, &v),
        None => Ok(()),
    }
}

impl Serialize for LimiterSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        write_some(&mut map, "requests_per_minute", self.requests_per_minute)?;
        write_some(&mut map, "tokens_per_minute", self.tokens_per_minute)?;
        write_some(&mut map, "initial_window", self.initial_window)?;
        write_some(&mut map, "max_pause", self.max_pause.map(written))?;
        write_some(&mut map, "max_in_flight", self.max_in_flight)?;
        write_some(&mut map, "beta", self.beta)?;
        write_some(&mut map, "scale", self.scale)?;
        write_some(&mut map, "min_rate", self.min_rate)?;
        write_some(&mut map, "max_rate", self.max_rate)?;
        map.end()
    }
}

impl Serialize for BudgetSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        write_some(&mut map, "ratio", self.ratio)?;
        write_some(&mut map, "burst", self.burst)?;
        map.end()
    }
}

impl Serialize for AdaptiveSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        write_some(&mut map, "window", self.window.map(written))?;
        write_some(&mut map, "max_multiplier", self.max_multiplier)?;
        map.end()
    }
}

/// Writes the policy's keys, every value written out, then the sections that are set.
impl Serialize for EndpointConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        PolicySpec::from_policy(&self.policy).write_keys(&mut map)?;
        write_some(&mut map, "limiter", self.limiter)?;
        write_some(&mut map, "budget", self.budget)?;
        write_some(&mut map, "adaptive", self.adaptive)?;
        map.end()
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig { policy: Policy::DEFAULT, limiter: None, budget: None, adaptive: None }
    }
}
