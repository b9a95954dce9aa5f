//! The providers' rate-limit headers, as the rate limiter writes them: [`RateHeaders`] chooses whose,
//! [`format_rfc3339`] writes Anthropic's resets.
//!
//! - OpenAI and Azure OpenAI (<https://platform.openai.com/docs/guides/rate-limits>):
//!   `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`, `x-ratelimit-reset-requests`
//!   (the time until the limit is back to its initial state, as `20ms`, `1s`, `6m0s`), and the same
//!   three for `-tokens`.
//! - Anthropic (<https://docs.anthropic.com/en/api/rate-limits>): `anthropic-ratelimit-requests-limit`,
//!   `-remaining` and `-reset` (when the limit is fully replenished, an RFC 3339 instant), and the
//!   same for `tokens` and `input-tokens`.

use std::time::{Duration, SystemTime};

use crate::{Route, format_openai_duration};

/// Which rate-limit headers the server's rate limiter sends on every response it admits or refuses.
///
/// Set it with [`ChaosServerBuilder::rate_headers`](crate::ChaosServerBuilder::rate_headers). The
/// values come from the limiters' state at that moment, exactly: `limit` is the per-minute rate,
/// `remaining` how many requests (or tokens) would be admitted right now, `reset` how long until
/// the bucket is full again (rounded up to the millisecond). The request headers are sent when
/// [`rate_limit`](crate::ChaosServerBuilder::rate_limit) is set, the token headers when
/// [`rate_limit_tokens`](crate::ChaosServerBuilder::rate_limit_tokens) is.
///
/// ```
/// use llm_retry_testkit::{RateHeaders, Route};
///
/// assert_eq!(RateHeaders::default(), RateHeaders::None);
/// assert_eq!(RateHeaders::Auto.on(Route::AzureChatCompletions), RateHeaders::OpenAi);
/// assert_eq!(RateHeaders::Auto.on(Route::Messages), RateHeaders::Anthropic);
/// assert_eq!(RateHeaders::Auto.on(Route::Converse), RateHeaders::None);
/// assert_eq!(RateHeaders::OpenAi.on(Route::Messages), RateHeaders::OpenAi);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateHeaders {
    /// None on successes; a refusal's `429` carries `retry-after`, `retry-after-ms` and OpenAI's three
    /// headers of the refusing limit, with `remaining` 0 and `reset` the wait (the behaviour before
    /// these headers existed).
    #[default]
    None,
    /// OpenAI's `x-ratelimit-*` headers, on every route.
    OpenAi,
    /// Anthropic's `anthropic-ratelimit-*` headers, on every route. The token bucket is reported as
    /// both `tokens` and `input-tokens` (it counts the prompt and the output allowance together).
    Anthropic,
    /// By route, as the providers do: OpenAI's on the OpenAI and Azure routes, Anthropic's on
    /// `/v1/messages`, none on the Gemini and Bedrock routes (which send no such headers).
    Auto,
}

impl RateHeaders {
    /// The headers a response on `route` gets: [`Auto`](Self::Auto) resolved, the others as they are.
    ///
    /// ```
    /// use llm_retry_testkit::{RateHeaders, Route};
    /// assert_eq!(RateHeaders::Auto.on(Route::ChatCompletions), RateHeaders::OpenAi);
    /// assert_eq!(RateHeaders::None.on(Route::Messages), RateHeaders::None);
    /// ```
    pub fn on(self, route: Route) -> RateHeaders {
        match (self, route) {
            (RateHeaders::Auto, Route::ChatCompletions | Route::AzureChatCompletions) => RateHeaders::OpenAi,
            (RateHeaders::Auto, Route::Messages) => RateHeaders::Anthropic,
            (RateHeaders::Auto, _) => RateHeaders::None,
            (style, _) => style,
        }
    }
}

/// One limiter's state at a moment: its per-minute limit, what is left, and how long until full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub limit: u64,
    pub remaining: u64,
    pub reset: Duration,
}

/// Both limiters' state, for those configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

/// The header pairs of `style` (already resolved for the route) for a snapshot taken at `now`.
pub(crate) fn header_pairs(style: RateHeaders, snapshot: &Snapshot, now: SystemTime) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut push = |names: [&'static str; 3], w: &Window, reset: String| {
        out.push((names[0], w.limit.to_string()));
        out.push((names[1], w.remaining.to_string()));
        out.push((names[2], reset));
    };
    let instant = |reset: Duration| format_rfc3339(now.checked_add(ceil_millis(reset)).unwrap_or(now));
    match style {
        RateHeaders::OpenAi => {
            if let Some(w) = &snapshot.requests {
                let names =
                    ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"];
                push(names, w, format_openai_duration(ceil_millis(w.reset)));
            }
            if let Some(w) = &snapshot.tokens {
                let names = ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"];
                push(names, w, format_openai_duration(ceil_millis(w.reset)));
            }
        }
        RateHeaders::Anthropic => {
            if let Some(w) = &snapshot.requests {
                let names = [
                    "anthropic-ratelimit-requests-limit",
                    "anthropic-ratelimit-requests-remaining",
                    "anthropic-ratelimit-requests-reset",
                ];
                push(names, w, instant(w.reset));
            }
            if let Some(w) = &snapshot.tokens {
                let names = [
                    "anthropic-ratelimit-tokens-limit",
                    "anthropic-ratelimit-tokens-remaining",
                    "anthropic-ratelimit-tokens-reset",
                ];
                push(names, w, instant(w.reset));
                let names = [
                    "anthropic-ratelimit-input-tokens-limit",
                    "anthropic-ratelimit-input-tokens-remaining",
                    "anthropic-ratelimit-input-tokens-reset",
                ];
                push(names, w, instant(w.reset));
            }
        }
        RateHeaders::None | RateHeaders::Auto => {}
    }
    out
}

/// Rounds up to the millisecond, the resolution of the headers: a client that waits as told is
/// never early.
pub(crate) fn ceil_millis(d: Duration) -> Duration {
    let millis = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Writes an instant as RFC 3339 in UTC, as Anthropic's `-reset` headers do:
/// `2025-12-05T06:00:02Z`, with milliseconds when there are any (`2025-12-05T06:00:02.125Z`, the
/// instant rounded up to the millisecond). Instants before 1970 are written as 1970's first second;
/// those after 9999 as 9999's last.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use llm_retry_testkit::format_rfc3339;
///
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_402);
/// assert_eq!(format_rfc3339(t), "2025-12-05T06:00:02Z");
/// assert_eq!(format_rfc3339(t + Duration::from_micros(124_001)), "2025-12-05T06:00:02.125Z");
/// assert_eq!(format_rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
/// ```
pub fn format_rfc3339(t: SystemTime) -> String {
    /// 9999-12-31T23:59:59.999Z, in milliseconds since the epoch.
    const LAST_MILLIS: u64 = 253_402_300_799_999;
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let millis = u64::try_from(ceil_millis(since).as_millis()).unwrap_or(u64::MAX).min(LAST_MILLIS);
    let (secs, ms) = (millis / 1000, millis % 1000);
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    if ms == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

/// Year, month and day of the `days`-th day after 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The date httpdate writes (`Fri, 05 Dec 2025 06:00:02 GMT`) as RFC 3339.
    fn via_httpdate(t: SystemTime) -> String {
        let imf = httpdate::fmt_http_date(t);
        let parts: Vec<&str> = imf.split(' ').collect();
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let month = months.iter().position(|m| *m == parts[2]).unwrap() + 1;
        format!("{}-{month:02}-{}T{}Z", parts[3], parts[1], parts[4])
    }

    #[test]
    fn whole_seconds_agree_with_httpdate_across_the_calendar() {
        // Leap days, century years (2100 is no leap year, 2000 is), month ends, the last second.
        let mut secs = 0u64;
        while secs < 253_402_300_799 {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(format_rfc3339(t), via_httpdate(t), "{secs}");
            secs += 86_400 * 13 + 3_607;
        }
        for secs in [951_782_400, 951_868_799, 4_107_542_399, 4_107_542_400, 253_402_300_799] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(format_rfc3339(t), via_httpdate(t), "{secs}");
        }
    }

    #[test]
    fn milliseconds_round_up_and_extremes_are_clamped() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_399);
        assert_eq!(format_rfc3339(t + Duration::from_nanos(1)), "2025-12-05T05:59:59.001Z");
        assert_eq!(format_rfc3339(t + Duration::from_nanos(999_000_001)), "2025-12-05T06:00:00Z");
        assert_eq!(format_rfc3339(t + Duration::from_millis(20)), "2025-12-05T05:59:59.020Z");
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        assert_eq!(format_rfc3339(far), "9999-12-31T23:59:59.999Z");
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(format_rfc3339(before), "1970-01-01T00:00:00Z");
    }

    fn pairs(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(n, v)| (*n, (*v).to_owned())).collect()
    }

    #[test]
    fn each_style_writes_its_names_and_formats() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_914_400);
        let snapshot = Snapshot {
            requests: Some(Window { limit: 600, remaining: 7, reset: Duration::from_micros(299_500) }),
            tokens: Some(Window { limit: 90_000, remaining: 1_234, reset: Duration::from_secs(61) }),
        };
        let openai = header_pairs(RateHeaders::OpenAi, &snapshot, now);
        assert_eq!(
            openai,
            pairs(&[
                ("x-ratelimit-limit-requests", "600"),
                ("x-ratelimit-remaining-requests", "7"),
                ("x-ratelimit-reset-requests", "300ms"),
                ("x-ratelimit-limit-tokens", "90000"),
                ("x-ratelimit-remaining-tokens", "1234"),
                ("x-ratelimit-reset-tokens", "1m1s"),
            ])
        );
        let anthropic = header_pairs(RateHeaders::Anthropic, &snapshot, now);
        assert_eq!(
            anthropic,
            pairs(&[
                ("anthropic-ratelimit-requests-limit", "600"),
                ("anthropic-ratelimit-requests-remaining", "7"),
                ("anthropic-ratelimit-requests-reset", "2025-12-05T06:00:00.300Z"),
                ("anthropic-ratelimit-tokens-limit", "90000"),
                ("anthropic-ratelimit-tokens-remaining", "1234"),
                ("anthropic-ratelimit-tokens-reset", "2025-12-05T06:01:01Z"),
                ("anthropic-ratelimit-input-tokens-limit", "90000"),
                ("anthropic-ratelimit-input-tokens-remaining", "1234"),
                ("anthropic-ratelimit-input-tokens-reset", "2025-12-05T06:01:01Z"),
            ])
        );
        assert!(header_pairs(RateHeaders::None, &snapshot, now).is_empty());
        let only_tokens = Snapshot { requests: None, ..snapshot };
        assert_eq!(header_pairs(RateHeaders::OpenAi, &only_tokens, now).len(), 3);
    }

    #[test]
    fn openai_resets_never_round_down() {
        // format_openai_duration truncates below the millisecond past a second; the headers round up first.
        assert_eq!(format_openai_duration(ceil_millis(Duration::from_nanos(1_000_000_001))), "1.001s");
        assert_eq!(format_openai_duration(ceil_millis(Duration::from_nanos(1))), "1ms");
        assert_eq!(format_openai_duration(ceil_millis(Duration::ZERO)), "0ms");
    }
}
