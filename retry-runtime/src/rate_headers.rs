//! The rate-limit headers providers send on every response, successes included: how many
//! requests and tokens the window allows, how many are left, and when it is full again.
//!
//! - OpenAI and Azure OpenAI: `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
//!   `x-ratelimit-reset-requests` (a Go-style duration: `1s`, `6m0s`, `20ms`), and the same
//!   three for `-tokens`.
//! - Anthropic: `anthropic-ratelimit-requests-limit`, `-remaining` and `-reset` (an RFC 3339
//!   instant), and the same for `tokens`, `input-tokens` and `output-tokens`.
//!
//! Every value is checked: a header that is missing, not a number, negative, absurd or in the
//! past leaves its field `None`, so a caller falls back to what it knew before. Nothing here
//! panics, whatever the bytes.

use crate::retry_after::{header_str, parse_go_duration};
use std::time::{Duration, SystemTime};

/// The largest limit or remaining count believed: 10¹² requests or tokens per window. A larger
/// number is treated as garbage.
const MAX_COUNT: u64 = 1_000_000_000_000;

/// The longest reset believed: a day. Providers' windows are a minute (requests, tokens) or a
/// day (some request limits); a reset further away than that is garbage.
pub(crate) const MAX_RESET: Duration = Duration::from_secs(24 * 60 * 60);

/// One rate-limit window as a response described it.
///
/// ```
/// use llm_retry_runtime::http::Window;
/// let w = Window::default();
/// assert_eq!((w.limit, w.remaining, w.reset), (None, None, None));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Window {
    /// How many the window allows (per minute for OpenAI's and Anthropic's request and token
    /// limits).
    pub limit: Option<u64>,
    /// How many are left now; never above `limit` when both are known.
    pub remaining: Option<u64>,
    /// How long until the window is full again, from when the response was made.
    pub reset: Option<Duration>,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }

    /// The sustained rate this window allows, per second, when its limit is known: the limit
    /// spread over the minute providers count it in.
    ///
    /// ```
    /// use llm_retry_runtime::http::RateLimitHeaders;
    /// let mut h = http::HeaderMap::new();
    /// h.insert("x-ratelimit-limit-requests", "600".parse().unwrap());
    /// let r = RateLimitHeaders::parse(&h, std::time::SystemTime::now()).unwrap();
    /// assert_eq!(r.requests.per_second(), Some(10.0));
    /// ```
    #[allow(clippy::cast_precision_loss)] // counts are at most 10¹², exact in an f64
    pub fn per_second(&self) -> Option<f64> {
        self.limit.filter(|l| *l > 0).map(|l| l as f64 / 60.0)
    }
}

/// What a response's rate-limit headers say, per dimension. Read them with
/// [`RateLimitHeaders::parse`].
///
/// ```
/// use llm_retry_runtime::http::RateLimitHeaders;
/// use std::time::{Duration, SystemTime};
///
/// let mut h = http::HeaderMap::new();
/// h.insert("x-ratelimit-limit-requests", "60".parse().unwrap());
/// h.insert("x-ratelimit-remaining-requests", "59".parse().unwrap());
/// h.insert("x-ratelimit-reset-requests", "1s".parse().unwrap());
/// h.insert("x-ratelimit-limit-tokens", "150000".parse().unwrap());
/// h.insert("x-ratelimit-remaining-tokens", "149984".parse().unwrap());
/// h.insert("x-ratelimit-reset-tokens", "6m0s".parse().unwrap());
/// let r = RateLimitHeaders::parse(&h, SystemTime::now()).unwrap();
/// assert_eq!(r.requests.remaining, Some(59));
/// assert_eq!(r.tokens.reset, Some(Duration::from_secs(360)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitHeaders {
    /// Requests.
    pub requests: Window,
    /// Tokens, input and output together (OpenAI's `-tokens`, Anthropic's `tokens`).
    pub tokens: Window,
    /// Input tokens (Anthropic).
    pub input_tokens: Window,
    /// Output tokens (Anthropic).
    pub output_tokens: Window,
}

/// The header names of one window: limit, remaining, reset.
struct Names {
    limit: &'static str,
    remaining: &'static str,
    reset: &'static str,
}

const OPENAI_REQUESTS: Names = Names {
    limit: "x-ratelimit-limit-requests",
    remaining: "x-ratelimit-remaining-requests",
    reset: "x-ratelimit-reset-requests",
};
const OPENAI_TOKENS: Names = Names {
    limit: "x-ratelimit-limit-tokens",
    remaining: "x-ratelimit-remaining-tokens",
    reset: "x-ratelimit-reset-tokens",
};
const ANTHROPIC_REQUESTS: Names = Names {
    limit: "anthropic-ratelimit-requests-limit",
    remaining: "anthropic-ratelimit-requests-remaining",
    reset: "anthropic-ratelimit-requests-reset",
};
const ANTHROPIC_TOKENS: Names = Names {
    limit: "anthropic-ratelimit-tokens-limit",
    remaining: "anthropic-ratelimit-tokens-remaining",
    reset: "anthropic-ratelimit-tokens-reset",
};
const ANTHROPIC_INPUT: Names = Names {
    limit: "anthropic-ratelimit-input-tokens-limit",
    remaining: "anthropic-ratelimit-input-tokens-remaining",
    reset: "anthropic-ratelimit-input-tokens-reset",
};
const ANTHROPIC_OUTPUT: Names = Names {
    limit: "anthropic-ratelimit-output-tokens-limit",
    remaining: "anthropic-ratelimit-output-tokens-remaining",
    reset: "anthropic-ratelimit-output-tokens-reset",
};

/// How a family writes its reset.
#[derive(Clone, Copy)]
enum Reset {
    /// A duration from now, Go-style (`1s`, `6m0s`, `20ms`): OpenAI.
    Duration,
    /// An RFC 3339 instant (`2026-12-05T06:00:00Z`): Anthropic.
    Instant,
}

impl RateLimitHeaders {
    /// Reads the OpenAI-style and Anthropic-style rate-limit headers of a response made at
    /// `now` (wall-clock time, for Anthropic's instants); `None` when there are none that
    /// parse. OpenAI's headers win over Anthropic's for the same dimension.
    ///
    /// ```
    /// use llm_retry_runtime::http::RateLimitHeaders;
    /// use std::time::{Duration, SystemTime};
    ///
    /// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_400); // 2025-12-05T06:00:00Z
    /// let mut h = http::HeaderMap::new();
    /// h.insert("anthropic-ratelimit-requests-limit", "50".parse().unwrap());
    /// h.insert("anthropic-ratelimit-requests-remaining", "0".parse().unwrap());
    /// h.insert("anthropic-ratelimit-requests-reset", "2025-12-05T06:00:02Z".parse().unwrap());
    /// let r = RateLimitHeaders::parse(&h, now).unwrap();
    /// assert_eq!(r.requests.remaining, Some(0));
    /// assert_eq!(r.requests.reset, Some(Duration::from_secs(2)));
    ///
    /// // Garbage is no information, never a panic.
    /// let mut h = http::HeaderMap::new();
    /// h.insert("x-ratelimit-remaining-requests", "-3".parse().unwrap());
    /// h.insert("x-ratelimit-reset-requests", "soon".parse().unwrap());
    /// assert_eq!(RateLimitHeaders::parse(&h, now), None);
    /// ```
    pub fn parse(headers: &http::HeaderMap, now: SystemTime) -> Option<RateLimitHeaders> {
        let pick = |openai: Window, anthropic: Window| if openai.is_empty() { anthropic } else { openai };
        let r = RateLimitHeaders {
            requests: pick(
                window(headers, &OPENAI_REQUESTS, Reset::Duration, now),
                window(headers, &ANTHROPIC_REQUESTS, Reset::Instant, now),
            ),
            tokens: pick(
                window(headers, &OPENAI_TOKENS, Reset::Duration, now),
                window(headers, &ANTHROPIC_TOKENS, Reset::Instant, now),
            ),
            input_tokens: window(headers, &ANTHROPIC_INPUT, Reset::Instant, now),
            output_tokens: window(headers, &ANTHROPIC_OUTPUT, Reset::Instant, now),
        };
        let empty = [r.requests, r.tokens, r.input_tokens, r.output_tokens].iter().all(Window::is_empty);
        (!empty).then_some(r)
    }
}

fn window(headers: &http::HeaderMap, names: &Names, reset: Reset, now: SystemTime) -> Window {
    let limit = header_str(headers, names.limit).and_then(count);
    let remaining = header_str(headers, names.remaining).and_then(count);
    // More left than the limit allows is contradictory: the limit is the bound.
    let remaining = match (remaining, limit) {
        (Some(r), Some(l)) => Some(r.min(l)),
        (r, _) => r,
    };
    let reset = header_str(headers, names.reset).and_then(|v| match reset {
        Reset::Duration => parse_go_duration(v.trim()),
        Reset::Instant => humantime::parse_rfc3339(v.trim()).ok()?.duration_since(now).ok(),
    });
    Window { limit, remaining, reset: reset.filter(|d| *d <= MAX_RESET) }
}

/// A count: plain digits, at most [`MAX_COUNT`].
fn count(v: &str) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || v.len() > 16 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n <= MAX_COUNT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn counts_are_plain_digits_within_bounds() {
        assert_eq!(count("0"), Some(0));
        assert_eq!(count(" 42 "), Some(42));
        for bad in ["", "-1", "1.5", "1e3", "abc", "99999999999999999999", "1000000000001", "+5"] {
            assert_eq!(count(bad), None, "{bad}");
        }
    }

    #[test]
    fn contradictions_and_garbage_leave_fields_unknown() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_400);
        let h = headers(&[
            ("x-ratelimit-limit-requests", "10"),
            ("x-ratelimit-remaining-requests", "50"),
            ("x-ratelimit-reset-requests", "2000h"),
            ("anthropic-ratelimit-tokens-reset", "2025-12-05T05:59:00Z"),
            ("anthropic-ratelimit-tokens-limit", "NaN"),
        ]);
        let r = RateLimitHeaders::parse(&h, now).unwrap();
        assert_eq!(r.requests, Window { limit: Some(10), remaining: Some(10), reset: None });
        assert!(r.tokens.is_empty(), "a reset in the past and a limit that is no number: {:?}", r.tokens);
    }

    #[test]
    fn openai_wins_over_anthropic_per_dimension() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_400);
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "7"),
            ("anthropic-ratelimit-requests-remaining", "3"),
            ("anthropic-ratelimit-output-tokens-remaining", "900"),
            ("anthropic-ratelimit-output-tokens-reset", "2025-12-05T06:00:00.5Z"),
        ]);
        let r = RateLimitHeaders::parse(&h, now).unwrap();
        assert_eq!(r.requests.remaining, Some(7));
        assert_eq!(r.output_tokens.remaining, Some(900));
        assert_eq!(r.output_tokens.reset, Some(Duration::from_millis(500)));
        assert_eq!(RateLimitHeaders::parse(&http::HeaderMap::new(), now), None);
    }
}
