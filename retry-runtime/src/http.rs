//! Classification of an HTTP error response: status, headers and (optionally) the body.
//!
//! The status gives the coarse kind ([`ErrorKind::from_status`]); the provider's JSON error
//! body refines it. Two body shapes are understood:
//!
//! - OpenAI (and the many APIs that copy it):
//!   `{"error": {"message": "...", "type": "...", "code": "...", "param": ...}}`
//! - Anthropic: `{"type": "error", "error": {"type": "overloaded_error", "message": "..."}}`
//!
//! Headers give the Retry-After hint ([`RetryAfter::from_headers`], and on a 429
//! [`RetryAfter::from_rate_limit_headers`]) and `x-should-retry`.

use crate::ErrorKind;
use crate::classify::{Classification, Classify};
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
/// - `kind`: [`ErrorKind::from_status`], refined by an OpenAI or Anthropic error body
///   (`insufficient_quota` is [`QuotaExhausted`](ErrorKind::QuotaExhausted) even on a
///   429, `context_length_exceeded` is [`ContextLengthExceeded`](ErrorKind::ContextLengthExceeded)
///   even on a 400, `overloaded_error` is [`Overloaded`](ErrorKind::Overloaded), ...).
///   A body that is not JSON, not one of those shapes, or longer than [`MAX_BODY_BYTES`]
///   leaves the status to decide.
/// - `status`: always set.
/// - `retry_after`: `retry-after-ms`, else `Retry-After`, else (on a 429 only) the smaller
///   of OpenAI's `x-ratelimit-reset-*` headers. Unusable values are ignored.
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
    let parsed = body.map(ProviderBody::parse);
    let mut c = Classification::new(refine_kind(status, parsed.as_ref())).with_status(status);
    if let Some(hint) = response_hint(status, headers, now) {
        c = c.with_retry_after(hint);
    }
    if let Some(verdict) = should_retry_header(headers) {
        c = c.with_should_retry(verdict);
    }
    c
}

/// The Retry-After hint of a response: `retry-after-ms`, `Retry-After`, then on a 429 the
/// `x-ratelimit-reset-*` headers (which are sent on every response, so mean nothing on
/// others).
pub(crate) fn response_hint(status: u16, headers: &http::HeaderMap, now: SystemTime) -> Option<RetryAfter> {
    RetryAfter::from_headers(headers, now)
        .or_else(|| if status == 429 { RetryAfter::from_rate_limit_headers(headers) } else { None })
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

/// Which provider's body shape was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    OpenAi,
    Anthropic,
    /// Not JSON, or JSON of no known shape: only the text is kept for a keyword search.
    Unknown,
}

/// What an error body said, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderBody {
    pub(crate) provider: Provider,
    pub(crate) message: Option<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) code: Option<String>,
    /// Lowercased message (or, for an unknown shape, the lowercased start of the body).
    lower_text: String,
}

/// How much of an unrecognised body is kept for the keyword search.
const TEXT_SCAN_BYTES: usize = 4 * 1024;

impl ProviderBody {
    /// Parses at most [`MAX_BODY_BYTES`] of `body`. Never fails: an unknown body gives
    /// `Provider::Unknown` with no fields.
    pub(crate) fn parse(body: &[u8]) -> ProviderBody {
        let body = &body[..body.len().min(MAX_BODY_BYTES)];
        // serde_json stops at 128 levels of nesting, so hostile nesting is an error, not a
        // stack overflow.
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(parsed) = Self::from_json(&value) {
                return parsed;
            }
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(TEXT_SCAN_BYTES)]);
        ProviderBody {
            provider: Provider::Unknown,
            message: None,
            error_type: None,
            code: None,
            lower_text: text.to_lowercase(),
        }
    }

    /// An OpenAI-shaped error whose fields were parsed elsewhere (async-openai).
    #[cfg_attr(not(feature = "async-openai"), allow(dead_code))]
    pub(crate) fn openai(message: Option<String>, error_type: Option<String>, code: Option<String>) -> ProviderBody {
        let lower_text = message.as_deref().unwrap_or("").to_lowercase();
        ProviderBody { provider: Provider::OpenAi, message, error_type, code, lower_text }
    }

    /// Whether the body had a known provider shape.
    #[cfg_attr(not(feature = "async-openai"), allow(dead_code))]
    pub(crate) fn is_known(&self) -> bool {
        self.provider != Provider::Unknown
    }

    fn from_json(value: &serde_json::Value) -> Option<ProviderBody> {
        // Some gateways wrap the error object in a one-element array.
        let root = match value {
            serde_json::Value::Array(items) => items.first()?,
            other => other,
        };
        let root = root.as_object()?;
        let error = root.get("error")?;
        let provider = if root.get("type").and_then(|t| t.as_str()) == Some("error") {
            Provider::Anthropic
        } else {
            Provider::OpenAi
        };
        let (message, error_type, code) = match error {
            serde_json::Value::Object(e) => {
                (text_field(e.get("message")), text_field(e.get("type")), text_field(e.get("code")))
            }
            // `{"error": "some message"}`
            serde_json::Value::String(s) => (Some(s.clone()), None, None),
            _ => return None,
        };
        let lower_text = message.as_deref().unwrap_or("").to_lowercase();
        Some(ProviderBody { provider, message, error_type, code, lower_text })
    }

    fn mentions(&self, needles: &[&str]) -> bool {
        needles.iter().any(|n| self.lower_text.contains(n))
    }
}

/// A string field, or a number rendered as text (some gateways send `"code": 429`).
fn text_field(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The kind an OpenAI `code`/`type` or Anthropic `error.type` names, if it names one.
/// `invalid_request_error` is left out: it is the generic fallback, weaker than any
/// message-based refinement.
fn kind_from_token(token: &str) -> Option<ErrorKind> {
    Some(match token {
        "insufficient_quota" | "billing_hard_limit_reached" | "billing_not_active" => ErrorKind::QuotaExhausted,
        "context_length_exceeded" | "request_too_large" => ErrorKind::ContextLengthExceeded,
        "rate_limit_exceeded" | "rate_limit_error" => ErrorKind::RateLimited,
        "content_filter" | "content_policy_violation" => ErrorKind::ContentFiltered,
        "overloaded_error" => ErrorKind::Overloaded,
        "server_error" | "api_error" => ErrorKind::Server,
        "invalid_api_key" | "authentication_error" | "permission_error" => ErrorKind::Auth,
        "model_not_found" | "not_found_error" => ErrorKind::NotFound,
        _ => return None,
    })
}

/// Phrases of an exhausted quota or spend limit, as opposed to a per-minute rate limit.
/// Kept specific on purpose: Azure's retryable 429 mentions `aka.ms/oai/quotaincrease`.
const QUOTA_PHRASES: &[&str] = &[
    "exceeded your current quota",
    "insufficient quota",
    "insufficient_quota",
    "quota exceeded",
    "quota has been exceeded",
    "billing",
    "spend limit",
    "spending limit",
    "credit balance is too low",
];

/// Phrases of a prompt that does not fit.
const CONTEXT_PHRASES: &[&str] =
    &["prompt is too long", "context window", "context length", "maximum context", "too many tokens"];

/// The kind of a response: the status, refined by what the body says.
pub(crate) fn refine_kind(status: u16, body: Option<&ProviderBody>) -> ErrorKind {
    let by_status = ErrorKind::from_status(status);
    let Some(body) = body else { return by_status };

    // The overloaded 503 (and 529): the body's type, or failing that its text, says so.
    if matches!(status, 503 | 529)
        && (body.error_type.as_deref() == Some("overloaded_error") || body.mentions(&["overload"]))
    {
        return ErrorKind::Overloaded;
    }
    if body.provider == Provider::Unknown {
        return by_status;
    }

    let code = body.code.as_deref().and_then(kind_from_token);
    let ty = body.error_type.as_deref().and_then(kind_from_token);
    // A specific code wins over the type: OpenAI sends `type: invalid_request_error` with
    // `code: invalid_api_key`, `model_not_found`, `context_length_exceeded`...
    let named = code.or(ty);
    // Message refinements never override an explicit rate-limit token: a rate-limit message
    // may well mention quotas or billing in passing.
    let quota_message = body.mentions(&["credit balance is too low"])
        || (status == 429 && named.is_none() && body.mentions(QUOTA_PHRASES));
    if named != Some(ErrorKind::RateLimited) && quota_message {
        return ErrorKind::QuotaExhausted;
    }
    if let Some(kind) = named {
        return kind;
    }
    let invalid_request = body.error_type.as_deref() == Some("invalid_request_error");
    if (invalid_request || matches!(status, 400 | 413)) && body.mentions(CONTEXT_PHRASES) {
        return ErrorKind::ContextLengthExceeded;
    }
    if invalid_request {
        // The generic "your request is wrong": keep a status that already says how (401,
        // 403, 404, 413), otherwise it is a bad request whatever the status claims.
        return if by_status.never_retryable_reason().is_some() { by_status } else { ErrorKind::BadRequest };
    }
    by_status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shapes() {
        let openai = ProviderBody::parse(br#"{"error":{"message":"m","type":"t","code":"c","param":null}}"#);
        assert_eq!(openai.provider, Provider::OpenAi);
        assert_eq!(
            (openai.message.as_deref(), openai.error_type.as_deref(), openai.code.as_deref()),
            (Some("m"), Some("t"), Some("c"))
        );
        let anthropic =
            ProviderBody::parse(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
        assert_eq!(anthropic.provider, Provider::Anthropic);
        assert_eq!(anthropic.error_type.as_deref(), Some("overloaded_error"));
        let numeric = ProviderBody::parse(br#"[{"error":{"code":429,"message":"x"}}]"#);
        assert_eq!(numeric.code.as_deref(), Some("429"));
        let string = ProviderBody::parse(br#"{"error":"boom"}"#);
        assert_eq!(string.message.as_deref(), Some("boom"));
        for junk in [&b""[..], b"null", b"[]", b"{\"error\":1}", b"{\"error\":[]}", b"<html>", b"\xff\xfe"] {
            assert_eq!(ProviderBody::parse(junk).provider, Provider::Unknown, "{junk:?}");
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let mut body = br#"{"error":{"type":"insufficient_quota","message":""#.to_vec();
        body.resize(MAX_BODY_BYTES + 10, b'a');
        body.extend_from_slice(br#""}}"#);
        // Valid JSON, but past the cap: only the status decides.
        assert_eq!(refine_kind(429, Some(&ProviderBody::parse(&body))), ErrorKind::RateLimited);
    }
}
