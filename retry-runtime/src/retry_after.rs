//! Retry-After and the other headers in which providers say when to come back.

use std::time::{Duration, SystemTime};

/// When the server asked to be called again.
///
/// A relative delay is kept as is; an HTTP date is kept as a point in wall-clock time and
/// resolved against the policy's injectable clock when the retry is planned.
///
/// ```
/// use llm_retry_runtime::http::RetryAfter;
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// assert_eq!(RetryAfter::Delay(Duration::from_secs(2)).resolve(now), Some(Duration::from_secs(2)));
/// let at = RetryAfter::At(now + Duration::from_secs(5));
/// assert_eq!(at.resolve(now), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// Come back after this long.
    Delay(Duration),
    /// Come back at this wall-clock time (an HTTP date).
    At(SystemTime),
}

impl RetryAfter {
    /// The delay from `now`, or `None` when the hint is unusable (zero, or a date in the past)
    /// and the policy should fall back to its own backoff.
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::{Duration, SystemTime};
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    /// assert_eq!(RetryAfter::At(now - Duration::from_secs(1)).resolve(now), None);
    /// assert_eq!(RetryAfter::Delay(Duration::ZERO).resolve(now), None);
    /// ```
    pub fn resolve(self, now: SystemTime) -> Option<Duration> {
        let d = match self {
            RetryAfter::Delay(d) => d,
            RetryAfter::At(at) => at.duration_since(now).ok()?,
        };
        (!d.is_zero()).then_some(d)
    }
}

/// Header names read by this module, lowercase as [`http::HeaderMap`] stores them.
const RETRY_AFTER: &str = "retry-after";
const RETRY_AFTER_MS: &str = "retry-after-ms";
const RESET_REQUESTS: &str = "x-ratelimit-reset-requests";
const RESET_TOKENS: &str = "x-ratelimit-reset-tokens";
const SHOULD_RETRY: &str = "x-should-retry";

impl RetryAfter {
    /// The longest hint taken seriously: 7 days. A longer delay (or a date further away) is
    /// treated as garbage and ignored, so the policy falls back to its own backoff.
    ///
    /// Hints between the policy's `max_retry_after` (120 s by default) and this bound are
    /// kept: the engine sees them and gives up at once, which is how "your quota resets in
    /// an hour" ends the call instead of sleeping. Only values no server means seriously
    /// (a year, `u64::MAX` seconds, the year 9999) are dropped here.
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::Duration;
    /// assert_eq!(RetryAfter::MAX_HINT, Duration::from_secs(7 * 24 * 60 * 60));
    /// assert!(RetryAfter::parse_ms("604800001").is_none());
    /// ```
    pub const MAX_HINT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

    /// Parses a `Retry-After` value: whole or fractional seconds (`"2"`, `"1.5"`) or an HTTP
    /// date (`"Wed, 21 Oct 2015 07:28:00 GMT"`).
    ///
    /// Returns `None` for anything unusable: empty, zero, negative, NaN, infinite,
    /// unparseable, or further than [`RetryAfter::MAX_HINT`] from `now`. A date in the past
    /// is kept (as [`RetryAfter::At`]); [`resolve`](RetryAfter::resolve) turns it into `None`
    /// against the policy's own clock, which may differ from `now`.
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400); // 07:26:40 GMT
    /// assert_eq!(RetryAfter::parse("2", now), Some(RetryAfter::Delay(Duration::from_secs(2))));
    /// assert_eq!(RetryAfter::parse("0.5", now), Some(RetryAfter::Delay(Duration::from_millis(500))));
    /// let at = RetryAfter::parse("Wed, 21 Oct 2015 07:28:00 GMT", now).unwrap();
    /// assert_eq!(at.resolve(now), Some(Duration::from_secs(80)));
    /// assert_eq!(RetryAfter::parse("-1", now), None);
    /// assert_eq!(RetryAfter::parse("soon", now), None);
    /// ```
    pub fn parse(value: &str, now: SystemTime) -> Option<RetryAfter> {
        let value = value.trim();
        if let Some(d) = parse_number(value, 1_000_000_000.0) {
            return d.map(RetryAfter::Delay);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        match at.duration_since(now) {
            Ok(ahead) if ahead > Self::MAX_HINT => None,
            _ => Some(RetryAfter::At(at)),
        }
    }

    /// Parses a `retry-after-ms` value (OpenAI and Azure): whole or fractional milliseconds.
    ///
    /// Returns `None` for empty, zero, negative, NaN, infinite, unparseable or longer than
    /// [`RetryAfter::MAX_HINT`].
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::Duration;
    /// assert_eq!(RetryAfter::parse_ms("250"), Some(RetryAfter::Delay(Duration::from_millis(250))));
    /// assert_eq!(RetryAfter::parse_ms("1.5"), Some(RetryAfter::Delay(Duration::from_micros(1500))));
    /// assert_eq!(RetryAfter::parse_ms("0"), None);
    /// ```
    pub fn parse_ms(value: &str) -> Option<RetryAfter> {
        parse_number(value.trim(), 1_000_000.0).flatten().map(RetryAfter::Delay)
    }

    /// Parses an OpenAI `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` value: a
    /// Go-style duration such as `"1s"`, `"6m0s"`, `"20ms"`, `"1h2m3.5s"` or `"0.5s"`.
    ///
    /// Units are `h`, `m`, `s`, `ms`, `us` (or `µs`) and `ns`; a bare number is read as
    /// seconds. Signs, zero, overflow and anything longer than [`RetryAfter::MAX_HINT`] give
    /// `None`.
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::Duration;
    /// assert_eq!(RetryAfter::parse_reset("6m0s"), Some(RetryAfter::Delay(Duration::from_secs(360))));
    /// assert_eq!(RetryAfter::parse_reset("1h2m3.5s"), Some(RetryAfter::Delay(Duration::from_millis(3_723_500))));
    /// assert_eq!(RetryAfter::parse_reset("20ms"), Some(RetryAfter::Delay(Duration::from_millis(20))));
    /// assert_eq!(RetryAfter::parse_reset("-1s"), None);
    /// ```
    pub fn parse_reset(value: &str) -> Option<RetryAfter> {
        parse_go_duration(value.trim()).map(RetryAfter::Delay)
    }

    /// The hint carried by `retry-after-ms` or `Retry-After`, with `now` the wall-clock time
    /// the response arrived (used only to reject absurdly distant dates).
    ///
    /// `retry-after-ms` wins when both are present and valid: it is the more precise of the
    /// two, and the OpenAI and Anthropic SDKs read it first. An invalid value of one header
    /// does not hide a valid value of the other. Non-UTF-8 header bytes are ignored.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let mut h = HeaderMap::new();
    /// h.insert("retry-after", "3".parse().unwrap());
    /// h.insert("retry-after-ms", "1500".parse().unwrap());
    /// let hint = RetryAfter::from_headers(&h, SystemTime::now());
    /// assert_eq!(hint, Some(RetryAfter::Delay(Duration::from_millis(1500))));
    /// ```
    pub fn from_headers(headers: &http::HeaderMap, now: SystemTime) -> Option<RetryAfter> {
        header_str(headers, RETRY_AFTER_MS)
            .and_then(Self::parse_ms)
            .or_else(|| header_str(headers, RETRY_AFTER).and_then(|v| Self::parse(v, now)))
    }

    /// The hint carried by OpenAI's `x-ratelimit-reset-requests` and
    /// `x-ratelimit-reset-tokens`: the smaller of the two valid values.
    ///
    /// These headers say when each limit resets, not when to retry, and they are sent on
    /// successful responses too: use them only for a 429, and only when no `Retry-After`
    /// is usable ([`classify_response`](crate::http::classify_response) does both). The smaller
    /// value is taken because waiting too little costs one more 429, which brings a fresh
    /// hint, while waiting too long (for a limit that is not the one that was hit) wastes
    /// time and may exceed the policy's cap and give up for nothing.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::Duration;
    ///
    /// let mut h = HeaderMap::new();
    /// h.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
    /// h.insert("x-ratelimit-reset-tokens", "20ms".parse().unwrap());
    /// assert_eq!(RetryAfter::from_rate_limit_headers(&h), Some(RetryAfter::Delay(Duration::from_millis(20))));
    /// ```
    pub fn from_rate_limit_headers(headers: &http::HeaderMap) -> Option<RetryAfter> {
        let requests = header_str(headers, RESET_REQUESTS).and_then(parse_go_duration);
        let tokens = header_str(headers, RESET_TOKENS).and_then(parse_go_duration);
        let smallest = match (requests, tokens) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        smallest.map(RetryAfter::Delay)
    }
}

/// The server's own verdict from `x-should-retry: true|false` (sent by OpenAI and
/// Anthropic), or `None` when the header is absent or holds anything else.
///
/// ```
/// use http::HeaderMap;
/// use llm_retry_runtime::http::should_retry_header;
///
/// let mut h = HeaderMap::new();
/// assert_eq!(should_retry_header(&h), None);
/// h.insert("x-should-retry", "false".parse().unwrap());
/// assert_eq!(should_retry_header(&h), Some(false));
/// h.insert("x-should-retry", "maybe".parse().unwrap());
/// assert_eq!(should_retry_header(&h), None);
/// ```
pub fn should_retry_header(headers: &http::HeaderMap) -> Option<bool> {
    let v = header_str(headers, SHOULD_RETRY)?.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The first value of `name`, if it is valid UTF-8.
fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    std::str::from_utf8(headers.get(name)?.as_bytes()).ok()
}

/// Whether `s` is a plain decimal number: digits with at most one `.`, at least one digit.
/// No sign, exponent, `inf` or `nan`: those are what `f64::from_str` would also accept.
fn is_plain_decimal(s: &str) -> bool {
    let mut digits = 0usize;
    let mut dots = 0usize;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

/// A number of units (`nanos_per_unit` nanoseconds each) as a usable delay.
///
/// `None` when `s` is not a number at all (it may be a date); `Some(None)` when it is a
/// number but unusable (zero, too large, or a sign, exponent, `inf` or `nan`).
fn parse_number(s: &str, nanos_per_unit: f64) -> Option<Option<Duration>> {
    if !is_plain_decimal(s) {
        // Signed, exponent and special forms are numbers too, but never usable hints.
        let looks_numeric = s.parse::<f64>().is_ok();
        return looks_numeric.then_some(None);
    }
    Some(units_to_duration(s.parse::<f64>().ok()?, nanos_per_unit))
}

/// `value` units of `nanos_per_unit` nanoseconds each, if positive and within the bound.
fn units_to_duration(value: f64, nanos_per_unit: f64) -> Option<Duration> {
    let nanos = value * nanos_per_unit;
    if !nanos.is_finite() || nanos.is_sign_negative() || nanos > RetryAfter::MAX_HINT.as_nanos() as f64 {
        return None;
    }
    let d = Duration::from_nanos(nanos.round() as u64);
    (!d.is_zero()).then_some(d)
}

/// A Go `time.Duration` string without sign, e.g. `1h2m3.5s`; a bare number is seconds.
fn parse_go_duration(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    if is_plain_decimal(s) {
        return units_to_duration(s.parse().ok()?, 1e9);
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (num, tail) = rest.split_at(num_len);
        if !is_plain_decimal(num) {
            return None;
        }
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" | "μs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += num.parse::<f64>().ok()? * nanos_per_unit;
        // Bail out early so that a long string of huge components cannot add up forever.
        if !total.is_finite() || total > RetryAfter::MAX_HINT.as_nanos() as f64 {
            return None;
        }
        rest = tail;
    }
    units_to_duration(total, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        let table = [
            ("1s", Some(ms(1000))),
            ("6m0s", Some(ms(360_000))),
            ("20ms", Some(ms(20))),
            ("1h2m3.5s", Some(ms(3_723_500))),
            ("0.5s", Some(ms(500))),
            ("1.5", Some(ms(1500))),
            ("100us", Some(Duration::from_micros(100))),
            ("100µs", Some(Duration::from_micros(100))),
            ("7ns", Some(Duration::from_nanos(7))),
            ("168h", Some(RetryAfter::MAX_HINT)),
            ("168h1ns", None),
            ("0s", None),
            ("", None),
            ("s", None),
            ("1", Some(ms(1000))),
            ("1x", None),
            ("1.2.3s", None),
            ("-1s", None),
            ("+1s", None),
            ("1s ", None),
            ("1e3s", None),
            (".s", None),
            ("99999999999999999999999h", None),
        ];
        for (s, want) in table {
            assert_eq!(parse_go_duration(s), want, "{s:?}");
        }
    }
}
