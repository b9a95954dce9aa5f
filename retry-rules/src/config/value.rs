//! One key's value, read from any format: TOML and JSON give numbers and booleans, the
//! environment gives strings, and each reader takes both. A value that cannot be used is an
//! error that says what is allowed; nothing overflows or panics.
//!
//! The readers work with `#[serde(deserialize_with = "...")]`, so an application's own
//! configuration can hold durations in the same human units:
//!
//! ```
//! use std::time::Duration;
//! #[derive(serde::Deserialize)]
//! struct Timeouts {
//!     #[serde(deserialize_with = "llm_retry_rules::config::value::duration")]
//!     connect: Duration,
//! }
//! # let t: Timeouts = serde::Deserialize::deserialize(
//! #     serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new([("connect", "1.5s")].into_iter())).unwrap();
//! # assert_eq!(t.connect, Duration::from_millis(1500));
//! ```

use crate::duration;
use crate::kind::ErrorKind;
use core::fmt;
use serde::de::{self, Deserializer, Visitor};
use std::time::Duration;

/// A whole number of at most `u32::MAX`: written as an integer, a float with no fraction, or
/// a string of digits.
///
/// ```
/// use serde::de::{IntoDeserializer, value::Error};
/// let n = llm_retry_rules::config::value::count(IntoDeserializer::<Error>::into_deserializer("7")).unwrap();
/// assert_eq!(n, 7);
/// assert!(llm_retry_rules::config::value::count(IntoDeserializer::<Error>::into_deserializer(-1i64)).is_err());
/// ```
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    d.deserialize_any(Whole)
}

/// A number: an integer, a float (NaN and the infinities included, for the rulebook to judge),
/// or a string holding one.
///
/// ```
/// use serde::de::{IntoDeserializer, value::Error};
/// let x = llm_retry_rules::config::value::number(IntoDeserializer::<Error>::into_deserializer("0.25")).unwrap();
/// assert_eq!(x, 0.25);
/// ```
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(NumberVisitor)
}

/// A duration string with its unit (`"500ms"`, `"1.5s"`, `"2m"`, `"1h"`), read by
/// [`crate::duration::parse`]. A bare number is an error that suggests the unit.
///
/// ```
/// use serde::de::{IntoDeserializer, value::Error};
/// let d = llm_retry_rules::config::value::duration(IntoDeserializer::<Error>::into_deserializer("2m")).unwrap();
/// assert_eq!(d.as_secs(), 120);
/// let e = llm_retry_rules::config::value::duration(IntoDeserializer::<Error>::into_deserializer(500u64)).unwrap_err();
/// assert!(e.to_string().contains("\"500ms\""));
/// ```
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

/// `true` or `false`, as a boolean or a string.
///
/// ```
/// use serde::de::{IntoDeserializer, value::Error};
/// assert!(!llm_retry_rules::config::value::flag(IntoDeserializer::<Error>::into_deserializer("false")).unwrap());
/// ```
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    d.deserialize_any(FlagVisitor)
}

/// A duration as a configuration file writes it, exactly: the largest whole unit (`"2m"`,
/// `"500ms"`), else seconds with as many decimals as it takes (`"1.5s"`, `"0.000001s"`), so
/// that [`crate::duration::parse`] reads back the same nanoseconds.
///
/// ```
/// use llm_retry_rules::config::value::written;
/// use std::time::Duration;
/// assert_eq!(written(Duration::from_millis(1500)), "1.5s");
/// assert_eq!(written(Duration::from_secs(7200)), "2h");
/// assert_eq!(written(Duration::from_nanos(123_456_789_123_456_789)), "123456789.123456789s");
/// ```
pub fn written(d: Duration) -> String {
    const SEC: u128 = 1_000_000_000;
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_owned();
    }
    if n % SEC == 0 {
        for (unit, len) in [("h", 3600 * SEC), ("m", 60 * SEC), ("s", SEC)] {
            if n % len == 0 {
                return format!("{}{unit}", n / len);
            }
        }
    }
    if n < SEC && n % 1_000_000 == 0 {
        return format!("{}ms", n / 1_000_000);
    }
    let frac = format!("{:09}", n % SEC);
    format!("{}.{}s", n / SEC, frac.trim_end_matches('0'))
}

/// A kind or an HTTP status, as `on` lists them and a rule names its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Kind(ErrorKind),
    Status(u16),
}

impl Target {
    pub(crate) fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Target, D::Error> {
        d.deserialize_any(TargetVisitor)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Kind(k) => f.write_str(k.name()),
            Target::Status(s) => write!(f, "{s}"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Target::read(d)
    }
}

struct Whole;

impl Whole {
    fn check<E: de::Error>(v: i128) -> Result<u32, E> {
        if v < 0 {
            return Err(E::custom(format!("{v} is negative: {}", Whole::ALLOWED)));
        }
        u32::try_from(v).map_err(|_| E::custom(format!("{v} is too large: {}", Whole::ALLOWED)))
    }
    const ALLOWED: &'static str = "expected a whole number from 0 to 4294967295, like 5";
}

impl Visitor<'_> for Whole {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, like 5")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        Whole::check(i128::from(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        Whole::check(i128::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<u32, E> {
        Whole::check(i128::try_from(v).unwrap_or(i128::MAX))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<u32, E> {
        Whole::check(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e30 {
            // Whole and far inside i128: the cast is exact.
            Whole::check(v as i128)
        } else {
            Err(E::custom(format!("{v} is not a whole number: {}", Whole::ALLOWED)))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
        let t = v.trim().replace('_', "");
        match t.parse::<i128>() {
            Ok(n) => Whole::check(n),
            Err(_) if !t.is_empty() && t.trim_start_matches(['-', '+']).bytes().all(|b| b.is_ascii_digit()) => {
                Err(E::custom(format!("`{v}` is too large: {}", Whole::ALLOWED)))
            }
            Err(_) => Err(E::custom(format!("`{v}` is not a number: {}", Whole::ALLOWED))),
        }
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, like 2.0")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.trim().parse::<f64>().map_err(|_| E::custom(format!("`{v}` is not a number: expected one like 2.0")))
    }
}

struct DurationVisitor;

impl DurationVisitor {
    fn bare<E: de::Error>(v: impl fmt::Display) -> Result<Duration, E> {
        duration::parse(&v.to_string()).map_err(E::custom)
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration with its unit, like \"500ms\", \"2s\" or \"1m\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        duration::parse(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        DurationVisitor::bare(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        DurationVisitor::bare(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        DurationVisitor::bare(v)
    }
}

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true or false")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(E::custom(format!("`{v}` is not a boolean: expected true or false"))),
        }
    }
}

struct TargetVisitor;

/// "... is not an HTTP status" for a number outside 100..=599.
fn not_a_status(v: impl fmt::Display) -> String {
    format!(
        "{v} is not an HTTP status; statuses run from 100 to 599, and the retried ones are 4xx and 5xx, like 429 or 503"
    )
}

impl Visitor<'_> for TargetVisitor {
    type Value = Target;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error kind like \"RateLimited\" or an HTTP status like 503")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Target, E> {
        match u16::try_from(v) {
            Ok(s) if (100..=599).contains(&s) => Ok(Target::Status(s)),
            _ => Err(E::custom(not_a_status(v))),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Target, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(not_a_status(v))),
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Target, E> {
        let t = v.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<u64>() {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::custom(not_a_status(t))),
            };
        }
        if let Some(kind) = ErrorKind::from_name(t) {
            return Ok(Target::Kind(kind));
        }
        let names = || ErrorKind::ALL.iter().map(|k| k.name());
        let hint = crate::suggest::did_you_mean(t, names());
        let list = names().collect::<Vec<_>>().join(", ");
        Err(E::custom(format!("unknown error kind `{t}`{hint}; kinds: {list}; or an HTTP status like 503")))
    }
}

/// A whole number read by [`count`], as a type (for `next_value`, or a field).
///
/// ```
/// let c: llm_retry_rules::config::value::Count = serde_json::from_str("\"12\"").unwrap();
/// assert_eq!(c.0, 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u32);

/// A number read by [`number`], as a type.
///
/// ```
/// let n: llm_retry_rules::config::value::Number = serde_json::from_str("2").unwrap();
/// assert_eq!(n.0, 2.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

/// A duration read by [`duration()`], as a type.
///
/// ```
/// let d: llm_retry_rules::config::value::Human = serde_json::from_str("\"250ms\"").unwrap();
/// assert_eq!(d.0.as_millis(), 250);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Human(pub Duration);

/// A boolean read by [`flag`], as a type.
///
/// ```
/// let f: llm_retry_rules::config::value::Flag = serde_json::from_str("\"true\"").unwrap();
/// assert!(f.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        count(d).map(Count)
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        number(d).map(Number)
    }
}

impl<'de> serde::Deserialize<'de> for Human {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration(d).map(Human)
    }
}

impl<'de> serde::Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        flag(d).map(Flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error;

    fn de<'a, T: IntoDeserializer<'a, Error>>(v: T) -> T::Deserializer {
        v.into_deserializer()
    }

    #[test]
    fn counts_reject_what_is_not_a_u32() {
        assert_eq!(count(de(5u64)).unwrap(), 5);
        assert_eq!(count(de("4_294_967_295")).unwrap(), u32::MAX);
        assert_eq!(count(de(3.0f64)).unwrap(), 3);
        for bad in [count(de(-1i64)), count(de(u64::MAX)), count(de(2.5f64)), count(de(f64::NAN)), count(de("x"))] {
            assert!(bad.unwrap_err().to_string().contains("4294967295"));
        }
        assert!(count(de("99999999999999999999999999999999999999999")).unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn durations_need_units_and_say_so() {
        assert_eq!(duration(de("1.5s")).unwrap(), Duration::from_millis(1500));
        assert!(duration(de(500u64)).unwrap_err().to_string().contains("\"500ms\""));
        assert!(duration(de("-5s")).unwrap_err().to_string().contains("negative"));
        assert!(duration(de("10 parsecs")).unwrap_err().to_string().contains("unknown unit"));
        assert!(duration(de(-5i64)).unwrap_err().to_string().contains("negative"));
    }

    #[test]
    fn written_durations_read_back_exactly() {
        let ns = Duration::from_nanos;
        for d in [ns(0), ns(1), ns(999), ns(1_000_000), ns(1_500_000_000), ns(u64::MAX), Duration::from_secs(3600)] {
            assert_eq!(duration::parse(&written(d)), Ok(d), "{}", written(d));
        }
    }

    #[test]
    fn targets_are_kinds_or_statuses() {
        assert_eq!(Target::read(de("RateLimited")).unwrap(), Target::Kind(ErrorKind::RateLimited));
        assert_eq!(Target::read(de(" 503")).unwrap(), Target::Status(503));
        assert_eq!(Target::read(de(429u64)).unwrap(), Target::Status(429));
        assert!(Target::read(de("RateLimit")).unwrap_err().to_string().contains("did you mean `RateLimited`"));
        assert!(Target::read(de(70000u64)).unwrap_err().to_string().contains("not an HTTP status"));
        assert!(Target::read(de(-3i64)).unwrap_err().to_string().contains("not an HTTP status"));
    }
}
