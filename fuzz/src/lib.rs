//! The bodies of the fuzz targets, as plain functions: `fuzz_targets/*.rs` hand them libFuzzer's
//! input, and `retry-runtime/tests/it/hostile.rs` (which includes this file as a module) replays the
//! committed seeds under `fuzz/seeds/` through them on stable, in every CI run.
//!
//! Each function panics only when an invariant is broken; any panic from inside the runtime is a
//! bug the fuzzer found.

use core::ops::ControlFlow;
use http::{HeaderMap, HeaderName, HeaderValue};
use llm_retry_runtime::{
    ApiError, Classify, Policy, RetryExt, call::DelaySource, http::RetryAfter, http::classify_response_at,
};
use std::time::{Duration, SystemTime};

/// The wall clock every input is judged against, so that a run is reproducible:
/// 2026-01-01T00:00:00Z.
pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// The longest Retry-After the fuzzed policy waits for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The most jitter the engine adds on top of a Retry-After hint (`U(0, clamp(hint/10, 10 ms, 1 s))`).
pub const MAX_HINT_JITTER: Duration = Duration::from_secs(1);

/// The default backoff's cap (exponential, 500 ms doubling, up to 20 s).
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The policy every input is decided under: the defaults, a 30 s Retry-After cap, and the fixed clock.
pub const POLICY: Policy = match Policy::builder().max_retry_after(MAX_RETRY_AFTER).wall_clock(now).build() {
    Ok(p) => p,
    Err(_) => panic!("the fuzz policy is valid"),
};

/// The headers a rate-limited response may carry a hint in.
pub const HINT_HEADERS: [&str; 5] =
    ["retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens", "x-should-retry"];

/// Input: lines of `name: value`. A line whose name is not a valid header name is taken whole as a
/// `retry-after` value. Values that are not valid header bytes are skipped, as `http` would never
/// hand them over.
///
/// Checks: every parser's result is within [`RetryAfter::MAX_HINT`]; a 429 with these headers either
/// retries after at most `max_retry_after` + jitter (or the backoff cap), or gives up because the
/// server asked for too long a wait or said `x-should-retry: false`.
pub fn retry_after(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => match HeaderName::from_bytes(&line[..i]) {
                Ok(name) => (name, trim_start(&line[i + 1..])),
                Err(_) => (HeaderName::from_static("retry-after"), line),
            },
            None => (HeaderName::from_static("retry-after"), line),
        };
        if let Ok(text) = std::str::from_utf8(value) {
            check_parsers(text);
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }

    let from_headers = RetryAfter::from_headers(&headers, now());
    check_hint(from_headers);
    check_hint(RetryAfter::from_rate_limit_headers(&headers));
    let c = classify_response_at(429, &headers, None, now());
    check_hint(c.retry_after);
    assert_eq!(c.status, Some(429));

    let error = ApiError::from_response_at(429, &headers, b"", now());
    assert_eq!(error.retry_after(), c.retry_after);
    let _ = (error.to_string(), format!("{error:?}"));
    decide(error);

    // The rate-limit headers of the same response: every field within its bounds.
    if let Some(r) = llm_retry_runtime::http::RateLimitHeaders::parse(&headers, now()) {
        for w in [r.requests, r.tokens, r.input_tokens, r.output_tokens] {
            assert!(w.limit.is_none_or(|l| l <= 1_000_000_000_000));
            assert!(w.remaining.is_none_or(|n| w.limit.is_none_or(|l| n <= l)));
            assert!(w.reset.is_none_or(|d| d <= std::time::Duration::from_secs(86_400)));
            assert!(w.per_second().is_none_or(f64::is_finite));
        }
    }
}

/// Input: two bytes of status (big-endian), then the body.
///
/// The body is classified as is (and again with its second line as Bedrock's `x-amzn-ErrorType`),
/// then its text (lossily decoded, split at newlines into message, type and code) is put into each
/// provider family's error shape (OpenAI, Anthropic, array-wrapped, Gemini, Bedrock, TGI, a bare
/// message, Mistral/vLLM's top-level form) and classified again. Checks:
/// nothing panics, the status is kept, the message is cut to [`ApiError::MAX_MESSAGE_CHARS`], and
/// each error is retried or given up on as its kind says.
pub fn error_body(data: &[u8]) {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => (500, data),
    };
    let headers = HeaderMap::new();
    classify_body(status, &headers, body);
    // The same body with Bedrock's exception header, named by the text's second line.
    let mut amazon = HeaderMap::new();
    if let Some(Ok(name)) = String::from_utf8_lossy(body).lines().nth(1).map(HeaderValue::from_str) {
        amazon.insert("x-amzn-errortype", name);
        classify_body(status, &amazon, body);
    }

    let text = String::from_utf8_lossy(body);
    let mut parts = text.splitn(3, '\n');
    let (message, kind, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let openai = serde_json::json!({"error": {"message": message, "type": kind, "code": code, "param": null}});
    let anthropic = serde_json::json!({"type": "error", "error": {"type": kind, "message": message}});
    let wrapped = serde_json::json!([{"error": {"code": code, "message": message}}]);
    let gemini = serde_json::json!({"error": {"code": status, "message": message, "status": kind,
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code},
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": code}]}]}});
    let bedrock = serde_json::json!({"__type": kind, "message": message});
    let tgi = serde_json::json!({"error": message, "error_type": kind});
    let bare = serde_json::json!({"message": message});
    let top_level = serde_json::json!({"object": "error", "message": message, "type": kind, "code": code,
        "innererror": {"code": code}, "metadata": {"flagged_input": code}});
    for shaped in [openai, anthropic, wrapped, gemini, bedrock, tgi, bare, top_level] {
        classify_body(status, &headers, shaped.to_string().as_bytes());
    }
}

/// Input: any bytes, read as an error message (lossily decoded).
///
/// The text goes through [`RetryAfter::from_message`] directly, then as the message of an OpenAI,
/// an Azure-style and an unknown body, and its first line as a Gemini `RetryInfo.retryDelay`. Checks:
/// every hint is a non-zero delay of at most [`RetryAfter::MAX_HINT`]; a body's hint is the message's
/// own hint (whatever the shape around it); a `retry-after` header always beats it; and the engine
/// decides on each within its bounds.
pub fn body_hint(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let direct = RetryAfter::from_message(&text);
    check_hint(direct);
    assert!(!matches!(direct, Some(RetryAfter::At(_))), "a message hint is always a delay");

    let delay = text.lines().next().unwrap_or("");
    let openai = serde_json::json!({"error": {"message": text, "type": "tokens", "code": "rate_limit_exceeded"}});
    let azure = serde_json::json!({"error": {"code": "429", "message": text}});
    let gemini = serde_json::json!({"error": {"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}});
    let mut header = HeaderMap::new();
    header.insert("retry-after", HeaderValue::from_static("3"));
    let shaped = [(openai, true), (azure, true), (gemini, false)];
    for (body, text_is_message) in shaped.map(|(b, m)| (b.to_string().into_bytes(), m)) {
        let c = classify_response_at(429, &HeaderMap::new(), Some(&body), now());
        check_hint(c.retry_after);
        if text_is_message && body.len() <= llm_retry_runtime::http::MAX_BODY_BYTES {
            // The OpenAI and Azure shapes carry the text as their message: the same hint.
            let lowered = RetryAfter::from_message(&text.to_lowercase());
            assert_eq!(c.retry_after, lowered, "the body's hint is its message's");
        }
        let with_header = classify_response_at(429, &header, Some(&body), now());
        assert_eq!(
            with_header.retry_after,
            Some(RetryAfter::Delay(Duration::from_secs(3))),
            "the header beats the body"
        );
        let error = ApiError::from_response_at(429, &HeaderMap::new(), &body, now());
        assert_eq!(error.retry_after(), c.retry_after);
        decide(error);
    }
    classify_body(503, &HeaderMap::new(), data);
}

fn classify_body(status: u16, headers: &HeaderMap, body: &[u8]) {
    let c = classify_response_at(status, headers, Some(body), now());
    assert_eq!(c.status, Some(status));
    let error = ApiError::from_response_at(status, headers, body, now());
    assert_eq!(error.kind(), c.kind, "ApiError and classify_response disagree");
    if let Some(m) = error.message() {
        assert!(m.chars().count() <= ApiError::MAX_MESSAGE_CHARS + 1, "message not cut: {} chars", m.chars().count());
    }
    let _ = (error.to_string(), format!("{error:?}"));
    let never = error.kind().never_retryable_reason().is_some();
    match decide(error) {
        Decided::Retried => assert!(!never, "a never-retryable {:?} was retried", c.kind),
        Decided::GaveUp => {}
    }
}

enum Decided {
    Retried,
    GaveUp,
}

/// The engine's decision on the first attempt failing with `error`, without sleeping.
fn decide(error: ApiError) -> Decided {
    let class = error.classify();
    let hint = class.retry_after.and_then(|h| h.resolve(now()));
    let mut call = POLICY.call::<(), ApiError>();
    call.start_attempt();
    match call.settle(Err(error), None) {
        ControlFlow::Continue(plan) => {
            assert_ne!(class.should_retry, Some(false), "retried although the server said x-should-retry: false");
            match plan.source {
                DelaySource::RetryAfter => {
                    let h = hint.expect("a Retry-After delay without a hint");
                    assert!(h <= MAX_RETRY_AFTER, "waited for a hint over the cap: {h:?}");
                    assert!(
                        plan.delay >= h && plan.delay <= h + MAX_HINT_JITTER,
                        "{:?} for a hint of {h:?}",
                        plan.delay
                    );
                }
                DelaySource::Backoff => assert!(plan.delay <= MAX_BACKOFF, "backoff {:?}", plan.delay),
            }
            Decided::Retried
        }
        ControlFlow::Break(Ok(())) => unreachable!("an error became a success"),
        ControlFlow::Break(Err(_)) => {
            let retryable = class.should_retry.unwrap_or_else(|| POLICY.retry_on().matches(class.kind, class.status));
            let too_long = hint.is_some_and(|h| h > MAX_RETRY_AFTER);
            assert!(!retryable || too_long, "gave up on a retryable {:?} with hint {hint:?}", class.kind);
            Decided::GaveUp
        }
    }
}

fn check_parsers(text: &str) {
    check_hint(RetryAfter::parse(text, now()));
    check_hint(RetryAfter::parse_ms(text));
    check_hint(RetryAfter::parse_reset(text));
}

/// A parsed hint is a non-zero delay of at most `MAX_HINT`, or a date at most `MAX_HINT` ahead.
fn check_hint(hint: Option<RetryAfter>) {
    match hint {
        None => {}
        Some(RetryAfter::Delay(d)) => assert!(!d.is_zero() && d <= RetryAfter::MAX_HINT, "delay {d:?}"),
        Some(RetryAfter::At(at)) => {
            if let Ok(ahead) = at.duration_since(now()) {
                assert!(ahead <= RetryAfter::MAX_HINT, "date {ahead:?} ahead");
            }
        }
    }
}

fn trim_start(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    b
}
