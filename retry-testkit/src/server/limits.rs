//! The rate limiters in front of valid requests: a request is admitted when both the request bucket
//! and the token bucket have room; the state both report in the rate-limit headers; and the `429`
//! a refusal gets on each route.

use std::time::{Duration, SystemTime};

use http::Response;
use serde_json::Value;
use tokio::time::Instant;

use super::answer::respond;
use super::wire::{insert, json_response};
use crate::body::ResponseBody;
use crate::persona::{self, Failure, Persona};
use crate::rate_headers::{self, Snapshot, Window, ceil_millis};
use crate::responses::{self as r, Api, Reply};
use crate::{RateHeaders, RetryAfterHeader, Route, TokenBucket, TokenRefusal, TokensPerMinute, format_openai_duration};

/// The request bucket and the token bucket, each if configured.
#[derive(Debug, Default)]
pub(super) struct Limiters {
    pub requests: Option<TokenBucket>,
    pub tokens: Option<TokensPerMinute>,
}

/// Why the limiters refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The request bucket is empty (and it is the longer wait if both are short).
    Requests { wait: Duration, requests_per_minute: u32 },
    /// Not enough tokens: `remaining` are left, `used` of the burst are spent, `requested` needed.
    Tokens { wait: Duration, tokens_per_minute: u32, remaining: u64, used: u64, requested: u64 },
    /// More tokens than the token bucket holds: never admitted.
    TooLarge { requested: u64, limit: u64 },
}

impl Limiters {
    /// Admits a request of `tokens` at `at`, taking from both buckets, or takes nothing.
    pub(super) fn admit(&mut self, tokens: u64, at: Instant) -> Result<(), Refusal> {
        let token_check = self.tokens.as_ref().map_or(Ok(()), |t| t.check_at(tokens, at));
        if let Err(TokenRefusal::TooLarge { requested, limit }) = token_check {
            return Err(Refusal::TooLarge { requested, limit });
        }
        let request_check = match self.requests.as_mut() {
            Some(bucket) if token_check.is_ok() => {
                bucket.try_acquire_at(at).map_err(|w| (w, bucket.requests_per_minute()))
            }
            Some(bucket) => bucket.clone().try_acquire_at(at).map_err(|w| (w, bucket.requests_per_minute())),
            None => Ok(()),
        };
        let tokens_refusal = |wait| {
            let bucket = self.tokens.as_ref().expect("only a token bucket refuses tokens");
            let limit = bucket.tokens_per_minute();
            let remaining = bucket.remaining_at(at);
            let used = u64::from(bucket.burst()).saturating_sub(remaining);
            Refusal::Tokens { wait, tokens_per_minute: limit, remaining, used, requested: tokens }
        };
        match (request_check, token_check) {
            (Ok(()), Ok(())) => {
                if let Some(bucket) = self.tokens.as_mut() {
                    // `check_at` just admitted these tokens at this instant.
                    let _ = bucket.try_spend_at(tokens, at);
                }
                Ok(())
            }
            (Err((wait, requests_per_minute)), Ok(())) => Err(Refusal::Requests { wait, requests_per_minute }),
            (Ok(()), Err(TokenRefusal::Wait(wait))) => Err(tokens_refusal(wait)),
            (Err((r_wait, requests_per_minute)), Err(TokenRefusal::Wait(t_wait))) => Err(if r_wait >= t_wait {
                Refusal::Requests { wait: r_wait, requests_per_minute }
            } else {
                tokens_refusal(t_wait)
            }),
            (_, Err(TokenRefusal::TooLarge { .. })) => unreachable!("returned above"),
        }
    }

    /// Both buckets' state at `at`.
    pub(super) fn snapshot(&self, at: Instant) -> Snapshot {
        Snapshot {
            requests: self.requests.as_ref().map(|b| Window {
                limit: u64::from(b.requests_per_minute()),
                remaining: u64::from(b.remaining_at(at)),
                reset: b.full_in(at),
            }),
            tokens: self.tokens.as_ref().map(|b| Window {
                limit: u64::from(b.tokens_per_minute()),
                remaining: b.remaining_at(at),
                reset: b.full_in(at),
            }),
        }
    }
}

/// The rate-limit headers a response on `route` gets, from the limiters' state at `at`.
pub(super) fn rate_headers(
    style: RateHeaders,
    route: Route,
    limiters: &Limiters,
    at: Instant,
) -> Vec<(&'static str, String)> {
    match style.on(route) {
        RateHeaders::None => Vec::new(),
        resolved => rate_headers::header_pairs(resolved, &limiters.snapshot(at), SystemTime::now()),
    }
}

/// The `429` of a refusal, in the route's shape, with `headers` (the rate-limit headers) added.
///
/// Without rate-limit headers ([`RateHeaders::None`]), the OpenAI and Anthropic routes carry OpenAI's
/// three headers of the refusing limit, `remaining` as it is and `reset` the wait, as they always have.
pub(super) fn refused(
    route: Route,
    refusal: Refusal,
    model: &str,
    seq: usize,
    headers: &[(&'static str, String)],
) -> Response<ResponseBody> {
    let mut resp = match Persona::of(route) {
        Persona::OpenAi | Persona::Anthropic => {
            let api = persona::api(route);
            let mut resp = json_response(429, &body(api, refusal, model));
            let h = resp.headers_mut();
            if let Some(wait) = wait(refusal) {
                insert(h, "retry-after", &wait.as_nanos().div_ceil(1_000_000_000).to_string());
                insert(h, "retry-after-ms", &wait.as_nanos().div_ceil(1_000_000).to_string());
            }
            if headers.is_empty() {
                match refusal {
                    Refusal::Requests { wait, requests_per_minute } => {
                        insert(h, "x-ratelimit-limit-requests", &requests_per_minute.to_string());
                        insert(h, "x-ratelimit-remaining-requests", "0");
                        insert(h, "x-ratelimit-reset-requests", &format_openai_duration(wait));
                    }
                    Refusal::Tokens { wait, tokens_per_minute, remaining, .. } => {
                        insert(h, "x-ratelimit-limit-tokens", &tokens_per_minute.to_string());
                        insert(h, "x-ratelimit-remaining-tokens", &remaining.to_string());
                        insert(h, "x-ratelimit-reset-tokens", &format_openai_duration(ceil_millis(wait)));
                    }
                    Refusal::TooLarge { .. } => {}
                }
            }
            resp
        }
        // The other providers' own 429: Gemini's `retryDelay`, Azure's headers and message, Bedrock's
        // bare throttle. The wait is rounded up to the millisecond, as the headers above round it.
        _ => {
            let hint = match wait(refusal) {
                Some(wait) => {
                    let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
                    let secs = millis.div_ceil(1000) as f64;
                    RetryAfterHeader::Many(vec![RetryAfterHeader::Seconds(secs), RetryAfterHeader::Millis(millis)])
                }
                None => RetryAfterHeader::None,
            };
            let reply = Reply::new(persona::api(route), seq, &Value::Null, None);
            respond(persona::error(route, Failure::RateLimited(&hint), &reply))
        }
    };
    for (name, value) in headers {
        insert(resp.headers_mut(), name, value);
    }
    resp
}

/// How long until the request would be admitted, if ever.
pub(super) fn wait(refusal: Refusal) -> Option<Duration> {
    match refusal {
        Refusal::Requests { wait, .. } | Refusal::Tokens { wait, .. } => Some(wait),
        Refusal::TooLarge { .. } => None,
    }
}

/// A refusal's body in OpenAI's or Anthropic's words.
fn body(api: Api, refusal: Refusal, model: &str) -> Value {
    match (api, refusal) {
        (_, Refusal::Requests { wait, .. }) => r::rate_limited(api, Some(wait)),
        (Api::OpenAi, Refusal::Tokens { wait, tokens_per_minute, used, requested, .. }) => r::openai_error(
            &format!(
                "Rate limit reached for {model} in organization org-chaos on tokens per min (TPM): Limit \
                 {tokens_per_minute}, Used {used}, Requested {requested}. Please try again in {}. Visit \
                 https://platform.openai.com/account/rate-limits to learn more.",
                format_openai_duration(ceil_millis(wait))
            ),
            "tokens",
            None,
            Some("rate_limit_exceeded"),
        ),
        (Api::OpenAi, Refusal::TooLarge { requested, limit }) => r::openai_error(
            &format!(
                "Request too large for {model} in organization org-chaos on tokens per min (TPM): Limit {limit}, \
                 Requested {requested}. The input or output tokens must be reduced in order to run successfully. \
                 Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
            "tokens",
            None,
            Some("rate_limit_exceeded"),
        ),
        (Api::Anthropic, Refusal::Tokens { tokens_per_minute, .. }) => r::anthropic_error(
            "rate_limit_error",
            &format!(
                "This request would exceed the rate limit for your organization of {tokens_per_minute} input \
                 tokens per minute. You can see the response headers for current usage. Please reduce the \
                 prompt length or the maximum tokens requested, or try again later."
            ),
        ),
        (Api::Anthropic, Refusal::TooLarge { requested, limit }) => r::anthropic_error(
            "rate_limit_error",
            &format!(
                "This request's {requested} input tokens exceed the rate limit for your organization of {limit} \
                 input tokens per minute, so it can never be admitted. Please reduce the prompt length or the \
                 maximum tokens requested."
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiters(rpm: Option<(u32, u32)>, tpm: Option<(u32, u32)>, at: Instant) -> Limiters {
        Limiters {
            requests: rpm.map(|(r, b)| TokenBucket::new_at(r, b, at)),
            tokens: tpm.map(|(t, b)| TokensPerMinute::new_at(t, b, at)),
        }
    }

    #[test]
    fn admission_needs_room_in_both_and_a_refusal_takes_from_neither() {
        let t0 = Instant::now();
        let mut l = limiters(Some((60, 2)), Some((600, 100)), t0); // 1 request/s, 10 tokens/s
        l.admit(90, t0).unwrap();
        // Requests have room, tokens do not: the request bucket keeps its token.
        let refusal = l.admit(20, t0).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Tokens {
                wait: Duration::from_secs(1),
                tokens_per_minute: 600,
                remaining: 10,
                used: 90,
                requested: 20
            }
        );
        assert_eq!(l.snapshot(t0).requests.unwrap().remaining, 1);
        l.admit(10, t0).unwrap();
        // Both empty: the longer wait is reported.
        let refusal = l.admit(5, t0).unwrap_err();
        assert_eq!(refusal, Refusal::Requests { wait: Duration::from_secs(1), requests_per_minute: 60 });
        let refusal = l.admit(50, t0 + Duration::from_secs(1)).unwrap_err();
        assert!(matches!(refusal, Refusal::Tokens { wait, .. } if wait == Duration::from_secs(4)), "{refusal:?}");
        // Too large wins over everything, and never passes.
        assert_eq!(l.admit(101, t0), Err(Refusal::TooLarge { requested: 101, limit: 100 }));
        assert_eq!(l.snapshot(t0).tokens.unwrap().remaining, 0);
    }

    #[test]
    fn the_snapshot_is_the_buckets_state() {
        let t0 = Instant::now();
        let mut l = limiters(Some((600, 5)), Some((60_000, 10_000)), t0);
        for k in 1..=5u64 {
            l.admit(1_000, t0).unwrap();
            let s = l.snapshot(t0);
            assert_eq!(
                s.requests,
                Some(Window { limit: 600, remaining: 5 - k, reset: Duration::from_millis(100 * k) })
            );
            assert_eq!(
                s.tokens,
                Some(Window { limit: 60_000, remaining: 10_000 - 1_000 * k, reset: Duration::from_secs(k) })
            );
        }
        assert_eq!(
            l.snapshot(t0 + Duration::from_secs(9)),
            Snapshot {
                requests: Some(Window { limit: 600, remaining: 5, reset: Duration::ZERO }),
                tokens: Some(Window { limit: 60_000, remaining: 10_000, reset: Duration::ZERO }),
            }
        );
    }

    /// Parses `20ms`, `1.5s`, `1m1s` back, as a client would.
    fn parse_openai(v: &str) -> Duration {
        if let Some(ms) = v.strip_suffix("ms") {
            return Duration::from_millis(ms.parse().unwrap());
        }
        let v = v.strip_suffix('s').unwrap();
        let (minutes, secs) = v.split_once('m').map_or((0.0, v), |(m, s)| (m.parse::<f64>().unwrap(), s));
        Duration::from_secs_f64(minutes * 60.0 + secs.parse::<f64>().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_pacing_by_the_headers_alone_is_never_refused() {
        // For each limit, a client that sends when the headers say there is room and otherwise waits
        // the reset they give never gets a 429, and keeps up with the limit.
        for (rpm, burst, tpm, tokens) in [(600, 1, None, 0), (7, 3, None, 0), (6_000, 10, Some((60_000, 5_000)), 700)] {
            let t0 = Instant::now();
            let mut l = limiters(Some((rpm, burst)), tpm, t0);
            let mut admitted = 0u32;
            while admitted < 60 {
                let now = Instant::now();
                l.admit(tokens, now).unwrap_or_else(|r| panic!("{rpm}/{burst}: refused after {admitted}: {r:?}"));
                admitted += 1;
                let headers = rate_headers(RateHeaders::OpenAi, Route::ChatCompletions, &l, now);
                let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
                let mut wait = Duration::ZERO;
                if get("x-ratelimit-remaining-requests") == Some("0") {
                    wait = wait.max(parse_openai(get("x-ratelimit-reset-requests").unwrap()));
                }
                if let Some(left) = get("x-ratelimit-remaining-tokens") {
                    if left.parse::<u64>().unwrap() < tokens {
                        wait = wait.max(parse_openai(get("x-ratelimit-reset-tokens").unwrap()));
                    }
                }
                tokio::time::advance(wait).await;
            }
            // Waiting until full whenever a bucket runs short wastes at most half the time.
            let elapsed = Instant::now() - t0;
            let by_requests = Duration::from_secs(60) / rpm * 60;
            let by_tokens = tpm.map_or(Duration::ZERO, |(t, _)| Duration::from_secs(60 * 60 * tokens) / t);
            assert!(elapsed <= 2 * by_requests.max(by_tokens), "{rpm}/{burst}: {elapsed:?}");
        }
    }

    #[test]
    fn a_client_pacing_at_the_limit_is_never_refused() {
        for (rpm, tpm, tokens) in [(7, 70, 10), (600, 60_000, 100), (1_200, 90_000, 75), (u32::MAX, u32::MAX, 1)] {
            let t0 = Instant::now();
            // No burst to lean on: the k-th request at k × 60 s / rpm (to the next nanosecond), spending
            // tokens at exactly the rate.
            let mut l = limiters(Some((rpm, 1)), Some((tpm, tokens)), t0);
            for k in 0..1_000u64 {
                let at = Duration::from_nanos((k * 60_000_000_000).div_ceil(u64::from(rpm)));
                l.admit(u64::from(tokens), t0 + at).unwrap_or_else(|r| panic!("{rpm}: request {k}: {r:?}"));
                // A second request at the same instant is refused: the limits are tight.
                if k > 0 && k % 100 == 0 {
                    assert!(l.admit(u64::from(tokens), t0 + at).is_err());
                }
            }
        }
    }
}
