//! Classification of an HTTP error response: status, headers and (optionally) the body.
//!
//! The status gives the coarse kind ([`ErrorKind::from_status`](crate::ErrorKind::from_status), plus 402 = out of credits and
//! Groq's 498 = at capacity); the provider's error body (and Bedrock's `x-amzn-ErrorType`
//! header) refines it. The bodies of OpenAI, Azure OpenAI, Anthropic, Google Gemini (AI Studio
//! and Vertex AI), AWS Bedrock, Mistral, Groq, Cohere, OpenRouter, DeepSeek, xAI, Together,
//! Fireworks, vLLM, TGI and Ollama are understood; where the body's code and the status
//! disagree, the body wins (a 429 that says the quota is spent is
//! [`QuotaExhausted`](crate::ErrorKind::QuotaExhausted), a 400 that says the prompt is too long is
//! [`ContextLengthExceeded`](crate::ErrorKind::ContextLengthExceeded)).
//!
//! Headers give the Retry-After hint ([`RetryAfter::from_headers`], and on a 429
//! [`RetryAfter::from_rate_limit_headers`]) and `x-should-retry`; failing those, the body's
//! own hint (Gemini's `RetryInfo.retryDelay`, or "try again in 6s" in the message, see
//! [`RetryAfter::from_message`]).

use crate::classify::{Classification, Classify};
pub(crate) use crate::providers::{ProviderBody, refine_kind};
pub use crate::rate_headers::{RateLimitHeaders, Window};
pub use crate::retry_after::{RetryAfter, should_retry_header};
use std::time::SystemTime;

/// How many bytes of a response body are looked at: 64 KiB.
///
/// Provider error bodies are a few hundred bytes. A longer body (an HTML error page from a
/// proxy, a runaway stream) is cut to this prefix before parsing, so classification stays
/// cheap whatever the server sends; a cut JSON body no longer parses and the status alone
/// (plus a text search of the prefix for "overloaded" on a 503) decides.
///
/// ```
/// assert_eq!(llm_retry_runtime::http::MAX_BODY_BYTES, 64 * 1024);
/// ```
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Classifies an HTTP response from its status, headers and, when available, body.
///
/// - `kind`: the status, refined by the provider's error body and Bedrock's
///   `x-amzn-ErrorType` header (`insufficient_quota` is [`QuotaExhausted`](crate::ErrorKind::QuotaExhausted)
///   even on a 429, `context_length_exceeded` is [`ContextLengthExceeded`](crate::ErrorKind::ContextLengthExceeded)
///   even on a 400, `overloaded_error` is [`Overloaded`](crate::ErrorKind::Overloaded), Gemini's
///   `RESOURCE_EXHAUSTED` is [`RateLimited`](crate::ErrorKind::RateLimited) unless a per-day quota
///   failed, ...). A body that is not JSON, of no known shape, or longer than
///   [`MAX_BODY_BYTES`] leaves the status to decide.
/// - `status`: always set.
/// - `retry_after`: `retry-after-ms`, else `Retry-After`, else (on a 429 only) the smaller
///   of OpenAI's `x-ratelimit-reset-*` headers, else the body's hint (Gemini's
///   `RetryInfo.retryDelay`, "try again in 6s", "retry after 6 seconds"). A header always
///   beats the body; unusable values (zero, negative, over [`RetryAfter::MAX_HINT`]) are
///   ignored.
/// - `should_retry`: `x-should-retry: true|false`.
///
/// Never panics, whatever the bytes.
///
/// ```
/// use http::HeaderMap;
/// use llm_retry_runtime::{ErrorKind, http::classify_response};
///
/// let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
/// let c = classify_response(429, &HeaderMap::new(), Some(body));
/// assert_eq!(c.kind, ErrorKind::QuotaExhausted);
/// assert_eq!(c.status, Some(429));
///
/// let c = classify_response(503, &HeaderMap::new(), Some(b"upstream overloaded, try later"));
/// assert_eq!(c.kind, ErrorKind::Overloaded);
///
/// assert_eq!(classify_response(502, &HeaderMap::new(), None).kind, ErrorKind::Server);
///
/// let gemini = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED",
///   "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"35s"}]}}"#;
/// let c = classify_response(429, &HeaderMap::new(), Some(gemini));
/// assert_eq!(c.kind, ErrorKind::RateLimited);
/// assert_eq!(c.retry_after, Some(llm_retry_runtime::http::RetryAfter::Delay(std::time::Duration::from_secs(35))));
/// ```
pub fn classify_response(status: u16, headers: &http::HeaderMap, body: Option<&[u8]>) -> Classification {
    classify_response_at(status, headers, body, SystemTime::now())
}

/// [`classify_response`] with the wall-clock time the response arrived given explicitly,
/// for tests: `now` only decides whether an HTTP-date `Retry-After` is absurdly far away
/// (more than [`RetryAfter::MAX_HINT`]).
///
/// ```
/// use http::HeaderMap;
/// use llm_retry_runtime::{ErrorKind, http::RetryAfter, http::classify_response_at};
/// use std::time::{Duration, SystemTime};
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400); // Wed, 21 Oct 2015 07:26:40 GMT
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
/// let c = classify_response_at(429, &h, None, now);
/// assert_eq!(c.kind, ErrorKind::RateLimited);
/// assert_eq!(c.retry_after.unwrap().resolve(now), Some(Duration::from_secs(80)));
/// ```
pub fn classify_response_at(
    status: u16,
    headers: &http::HeaderMap,
    body: Option<&[u8]>,
    now: SystemTime,
) -> Classification {
    let parsed = ProviderBody::read(headers, body);
    let mut c = Classification::new(refine_kind(status, parsed.as_ref())).with_status(status);
    if let Some(hint) = response_hint(status, headers, parsed.as_ref(), now) {
        c = c.with_retry_after(hint);
    }
    if let Some(verdict) = should_retry_header(headers) {
        c = c.with_should_retry(verdict);
    }
    c
}

/// The Retry-After hint of a response: `retry-after-ms`, `Retry-After`, then on a 429 the
/// `x-ratelimit-reset-*` headers (which are sent on every response, so mean nothing on
/// others), then the body's own hint. Any header beats the body.
pub(crate) fn response_hint(
    status: u16,
    headers: &http::HeaderMap,
    body: Option<&ProviderBody>,
    now: SystemTime,
) -> Option<RetryAfter> {
    RetryAfter::from_headers(headers, now)
        .or_else(|| if status == 429 { RetryAfter::from_rate_limit_headers(headers) } else { None })
        .or_else(|| body?.hint.map(RetryAfter::Delay))
}

/// A status and the response headers, as a [`Classify`] value: the body-less form of
/// [`classify_response`].
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use llm_retry_runtime::{Classify, ErrorKind};
///
/// let mut h = HeaderMap::new();
/// h.insert("x-should-retry", "true".parse().unwrap());
/// let c = (StatusCode::TOO_MANY_REQUESTS, &h).classify();
/// assert_eq!(c.kind, ErrorKind::RateLimited);
/// assert_eq!(c.should_retry, Some(true));
/// ```
impl Classify for (http::StatusCode, &http::HeaderMap) {
    fn classify(&self) -> Classification {
        classify_response(self.0.as_u16(), self.1, None)
    }
}
