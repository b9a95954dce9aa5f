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

/// How much of an error message is searched for a retry hint: the first 4 KiB.
pub(crate) const MESSAGE_SCAN_BYTES: usize = 4 * 1024;

/// The phrases after which providers write how long to wait, matched without regard to case.
const HINT_PHRASES: [&str; 4] = ["try again in", "retry after", "retry in", "try again after"];

impl RetryAfter {
    /// The hint written in an error message's text, as providers phrase it:
    ///
    /// - OpenAI and Groq: "Please try again in 6s.", "in 1.5s", "in 20ms", "in 1m30s",
    ///   "in 2m59.56s";
    /// - Azure OpenAI: "Please retry after 6 seconds.", "retry after 1 second",
    ///   "Try again in 6 seconds", "Please retry after 6 second(s)";
    /// - Gemini: "Please retry in 35.338443s."
    ///
    /// A duration is one or more `<number><unit>` parts (`1m30s`), or one number, a space and a
    /// unit word (`6 seconds`). Units: `ms`, `msec`, `millisecond(s)`, `s`, `sec(s)`,
    /// `second(s)`, `m`, `min(s)`, `minute(s)`, `h`, `hour(s)`. Numbers are plain decimals, read
    /// exactly to the nanosecond (no floating point). Zero, a number with no unit, and
    /// anything longer than [`RetryAfter::MAX_HINT`] are no hint. Only the first 4 KiB of
    /// `text` are read, in one pass without backtracking and without allocating.
    ///
    /// ```
    /// use llm_retry_runtime::http::RetryAfter;
    /// use std::time::Duration;
    ///
    /// let hint = |s| RetryAfter::from_message(s);
    /// assert_eq!(hint("Rate limit reached. Please try again in 1m30s."), Some(RetryAfter::Delay(Duration::from_secs(90))));
    /// assert_eq!(hint("Please retry after 6 seconds."), Some(RetryAfter::Delay(Duration::from_secs(6))));
    /// assert_eq!(hint("try again in 20ms"), Some(RetryAfter::Delay(Duration::from_millis(20))));
    /// assert_eq!(hint("Please retry in 1.5s."), Some(RetryAfter::Delay(Duration::from_millis(1500))));
    /// assert_eq!(hint("please try again in a moment"), None);
    /// assert_eq!(hint("retry after 0s"), None);
    /// ```
    pub fn from_message(text: &str) -> Option<RetryAfter> {
        let bytes = text.as_bytes();
        let bytes = &bytes[..bytes.len().min(MESSAGE_SCAN_BYTES)];
        for start in 0..bytes.len() {
            // A phrase starts a word: "retry after" inside "pretry after" is no phrase.
            if start > 0 && bytes[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            let rest = &bytes[start..];
            for phrase in HINT_PHRASES {
                let p = phrase.as_bytes();
                if rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p) {
                    if let Some(d) = duration_after(&rest[p.len()..]) {
                        return Some(RetryAfter::Delay(d));
                    }
                }
            }
        }
        None
    }
}

/// A duration written out as the whole of `s`, e.g. Gemini's `RetryInfo.retryDelay`
/// (`"35s"`, `"1.500s"`, the JSON form of `google.protobuf.Duration`); the same grammar as
/// [`RetryAfter::from_message`] reads after its phrases.
pub(crate) fn parse_written_duration(s: &str) -> Option<Duration> {
    let (d, used) = written_duration(s.trim().as_bytes())?;
    (used == s.trim().len()).then_some(d)
}

/// The duration that follows a hint phrase: at most two spaces, then the duration.
fn duration_after(rest: &[u8]) -> Option<Duration> {
    let spaces = rest.iter().take(2).take_while(|b| **b == b' ').count();
    if spaces == 0 {
        return None;
    }
    written_duration(&rest[spaces..]).map(|(d, _)| d)
}

/// The most parts a written duration has (`1h2m3s4ms`), digits in a whole part and fraction
/// digits read: each part reads a bounded number of bytes, so a hostile text costs nothing.
const MAX_PARTS: usize = 4;
const MAX_WHOLE_DIGITS: usize = 12;
const MAX_FRACTION_DIGITS: usize = 9;
const MAX_UNIT_LETTERS: usize = 12;

/// A written duration at the start of `s`, and how many bytes it took: one or more
/// `<number><unit>` parts with no space between them, or one `<number> <unit word>`.
/// `None` when there is none, or it is zero or longer than [`RetryAfter::MAX_HINT`].
fn written_duration(s: &[u8]) -> Option<(Duration, usize)> {
    let mut total: u128 = 0;
    let mut pos = 0;
    for part in 0..MAX_PARTS {
        let Some((nanos, used)) = written_part(&s[pos..], part == 0) else {
            if part == 0 {
                return None;
            }
            break;
        };
        total = total.saturating_add(nanos);
        pos += used;
        // Another part follows only when a digit comes straight after the unit (`1m30s`).
        if !s.get(pos).is_some_and(u8::is_ascii_digit) {
            break;
        }
    }
    if total == 0 || total > RetryAfter::MAX_HINT.as_nanos() {
        return None;
    }
    Some((Duration::from_nanos(u64::try_from(total).ok()?), pos))
}

/// One `<number><unit>` part: its length in nanoseconds and the bytes it took. A space
/// between the number and the unit is allowed only in the first part (`6 seconds`).
fn written_part(s: &[u8], first: bool) -> Option<(u128, usize)> {
    let whole_len = s.iter().take(MAX_WHOLE_DIGITS + 1).take_while(|b| b.is_ascii_digit()).count();
    if whole_len == 0 || whole_len > MAX_WHOLE_DIGITS {
        return None;
    }
    let mut pos = whole_len;
    let whole: u128 = digits_value(&s[..whole_len]);
    // The fraction, as nanounits (billionths of a unit); digits past the ninth are read and
    // dropped.
    let mut fraction: u128 = 0;
    if s.get(pos) == Some(&b'.') && s.get(pos + 1).is_some_and(u8::is_ascii_digit) {
        pos += 1;
        let digits = s[pos..].iter().take(64).take_while(|b| b.is_ascii_digit()).count();
        if digits == 64 {
            return None;
        }
        let kept = digits.min(MAX_FRACTION_DIGITS);
        fraction = digits_value(&s[pos..pos + kept]) * 10u128.pow((MAX_FRACTION_DIGITS - kept) as u32);
        pos += digits;
    }
    if first && s.get(pos) == Some(&b' ') {
        pos += 1;
    }
    let letters = s[pos..].iter().take(MAX_UNIT_LETTERS + 1).take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > MAX_UNIT_LETTERS {
        return None;
    }
    let unit = unit_nanos(&s[pos..pos + letters])?;
    pos += letters;
    // Azure writes "second(s)".
    if s[pos..].starts_with(b"(s)") {
        pos += 3;
    }
    Some((whole * unit + fraction * unit / 1_000_000_000, pos))
}

fn digits_value(digits: &[u8]) -> u128 {
    digits.iter().fold(0u128, |acc, d| acc * 10 + u128::from(d - b'0'))
}

/// Nanoseconds per unit, for the unit words providers write (any case).
fn unit_nanos(word: &[u8]) -> Option<u128> {
    const MS: u128 = 1_000_000;
    const S: u128 = 1_000 * MS;
    let mut lower = [0u8; MAX_UNIT_LETTERS];
    let lower = lower.get_mut(..word.len())?;
    lower.copy_from_slice(word);
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"ms" | b"msec" | b"msecs" | b"millisecond" | b"milliseconds" => MS,
        b"s" | b"sec" | b"secs" | b"second" | b"seconds" => S,
        b"m" | b"min" | b"mins" | b"minute" | b"minutes" => 60 * S,
        b"h" | b"hr" | b"hrs" | b"hour" | b"hours" => 3_600 * S,
        _ => return None,
    })
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
pub(crate) fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
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
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
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
