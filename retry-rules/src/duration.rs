//! Duration strings, as the attribute and configuration files write them: `"500ms"`, `"2s"`,
//! `"1.5s"`, `"1m"`, `"1h"`.

use core::fmt;
use std::time::Duration;

/// A duration as the user would write it: `500ms`, `2s`, `1.5s`, `1m`.
///
/// ```
/// use llm_retry_rules::duration::Written;
/// use std::time::Duration;
/// assert_eq!(Written(Duration::from_millis(1500)).to_string(), "1.5s");
/// assert_eq!(Written(Duration::from_secs(120)).to_string(), "2m");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Written(pub Duration);

/// The units a duration string may use, with their length in nanoseconds.
const UNITS: &[(&str, u64)] =
    &[("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)];

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX);
        const SEC: u64 = 1_000_000_000;
        if n % SEC == 0 && n > 0 {
            let (unit, len) = UNITS.iter().rev().find(|(_, len)| n % len == 0).copied().unwrap_or(("s", SEC));
            write!(f, "{}{unit}", n / len)
        } else if n >= SEC {
            write!(f, "{}s", n as f64 / 1e9)
        } else if n % 1_000_000 == 0 {
            write!(f, "{}ms", n / 1_000_000)
        } else {
            write!(f, "{}ms", n as f64 / 1e6)
        }
    }
}

/// Parses a duration string, or explains what is wrong with it in a sentence that names the
/// fix. A duration holds up to `u64::MAX` nanoseconds (about 584 years).
///
/// ```
/// use llm_retry_rules::duration::parse;
/// use std::time::Duration;
/// assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse("500").unwrap_err().contains("\"500ms\""));
/// ```
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("a duration needs a number and a unit, like \"500ms\", \"2s\", \"1m\" or \"1h\"".into());
    }
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative; durations are at least zero, like \"500ms\""));
    }
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim_start());
    let number = number.replace('_', "");
    if number.is_empty() || number == "." {
        return Err(format!("`{t}` does not start with a number; write a number and a unit, like \"500ms\" or \"2s\""));
    }
    if unit.is_empty() {
        return Err(format!("`{t}` has no unit; write \"{number}ms\" or \"{number}s\" (units: ms, s, m, h)"));
    }
    let Some(&(_, len)) = UNITS.iter().find(|u| u.0 == unit) else {
        let hint = match unit {
            "sec" | "secs" | "second" | "seconds" => format!("; write \"{number}s\""),
            "min" | "mins" | "minute" | "minutes" => format!("; write \"{number}m\""),
            "hr" | "hrs" | "hour" | "hours" => format!("; write \"{number}h\""),
            "millis" | "msec" | "msecs" | "milliseconds" => format!("; write \"{number}ms\""),
            "ns" | "us" | "µs" => {
                "; delays that short are indistinguishable from none: use \"1ms\" or more".to_owned()
            }
            _ => String::new(),
        };
        return Err(format!("unknown unit `{unit}` in \"{t}\": use ms, s, m or h{hint}"));
    };
    let (int, frac) = number.split_once('.').unwrap_or((&number, ""));
    if frac.contains('.') {
        return Err(format!("`{t}` is not a number followed by a unit; write it like \"1.5s\""));
    }
    let too_long = || format!("\"{t}\" is too long to be a duration");
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| too_long())? };
    let mut nanos = int.checked_mul(u128::from(len)).ok_or_else(too_long)?;
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).map_err(|_| too_long())?;
        let scale = 10u128.checked_pow(digits).ok_or_else(|| format!("\"{t}\" has too many decimals"))?;
        let frac_value: u128 = frac.parse().map_err(|_| too_long())?;
        let part = frac_value * u128::from(len);
        if part % scale != 0 {
            return Err(format!("\"{t}\" is finer than a nanosecond; use fewer decimals"));
        }
        nanos = nanos.checked_add(part / scale).ok_or_else(too_long)?;
    }
    u64::try_from(nanos).map(Duration::from_nanos).map_err(|_| too_long())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_decimals() {
        let ms = Duration::from_millis;
        assert_eq!(parse("500ms"), Ok(ms(500)));
        assert_eq!(parse("2s"), Ok(ms(2_000)));
        assert_eq!(parse("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse("1m"), Ok(ms(60_000)));
        assert_eq!(parse("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse(" 250 ms "), Ok(ms(250)));
        assert_eq!(parse("1_000ms"), Ok(ms(1_000)));
        assert_eq!(parse(".5s"), Ok(ms(500)));
    }

    #[test]
    fn rejects_with_the_fix() {
        assert!(parse("500").unwrap_err().contains("\"500ms\""));
        assert!(parse("5 sec").unwrap_err().contains("\"5s\""));
        assert!(parse("5fortnights").unwrap_err().contains("unknown unit"));
        assert!(parse("-1s").unwrap_err().contains("negative"));
        assert!(parse("ms").unwrap_err().contains("number"));
        assert!(parse("1.2.3s").is_err());
        assert!(parse("99999999999999999999999h").unwrap_err().contains("too long"));
        assert!(parse("1.0000000001s").unwrap_err().contains("nanosecond"));
    }

    #[test]
    fn displays_as_written() {
        for s in ["500ms", "2s", "1m", "1h", "1.5s", "0.25ms"] {
            assert_eq!(Written(parse(s).unwrap()).to_string(), s);
        }
    }
}
