//! `async-openai` 0.43: [`Classify`] for `OpenAIError`, and [`ApiError`] from it.
//!
//! async-openai 0.43 retries on its own: its default client wraps every request in
//! `OpenAIRetryLayer` (up to 3 retries of 429s other than `insufficient_quota`, 5xx and
//! connect errors, up to 8 s apart). With `llm_retry` around the call that makes two
//! nested retry loops. See `Classify for OpenAIError` for how to switch it off.

use crate::ErrorKind;
use crate::api_error::ApiError;
use crate::classify::{Classification, Classify};
use crate::http::{ProviderBody, RetryAfter, refine_kind};
use ::async_openai::error::{OpenAIError, StreamError};
use std::sync::Arc;

/// Classifies an async-openai error (feature `async-openai`).
///
/// - `ApiError` (an HTTP error response): its status refined by the body's `type` and
///   `code` as in [`classify_response`](crate::http::classify_response): `insufficient_quota`
///   is [`ErrorKind::QuotaExhausted`], `context_length_exceeded` is
///   [`ErrorKind::ContextLengthExceeded`], `rate_limit_exceeded` is
///   [`ErrorKind::RateLimited`], and so on. async-openai does not keep the response
///   headers, so there is no Retry-After hint.
/// - `Reqwest`: as `Classify for reqwest::Error` (async-openai 0.43 uses reqwest 0.13, the
///   same version as the `reqwest` feature, which `async-openai` enables).
/// - `StreamError` from the transport (the connection broke mid-stream):
///   [`ErrorKind::Connection`]; other stream errors: [`ErrorKind::Other`].
/// - `InvalidArgument` (rejected before sending): [`ErrorKind::BadRequest`].
/// - Anything else (a body that did not deserialize, file errors): [`ErrorKind::Other`].
///
/// ```
/// use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError};
/// use llm_retry_runtime::{Classify, ErrorKind};
///
/// let err = OpenAIError::ApiError(ApiErrorResponse {
///     status_code: reqwest::StatusCode::TOO_MANY_REQUESTS,
///     api_error: ApiError {
///         message: "You exceeded your current quota".into(),
///         r#type: Some("insufficient_quota".into()),
///         code: Some("insufficient_quota".into()),
///         ..Default::default()
///     },
/// });
/// assert_eq!(err.classify().kind, ErrorKind::QuotaExhausted);
/// ```
///
/// # Exactly one retry loop
///
/// Switch async-openai's own retries off by installing its bare transport, without
/// `OpenAIRetryLayer`. That needs async-openai's `middleware` feature in your
/// `Cargo.toml` (`async-openai = { version = "0.43", features = ["chat-completion",
/// "middleware"] }`):
///
/// ```ignore
/// use async_openai::{Client, config::OpenAIConfig, middleware::ReqwestService};
///
/// // No OpenAIRetryLayer: every failure comes straight back to llm_retry.
/// let client = Client::with_config(OpenAIConfig::default())
///     .with_http_service(ReqwestService::new(reqwest::Client::new()));
/// ```
///
/// Without that feature, `Client::new()`, `Client::with_config` and
/// `Client::with_http_client` all install the retry layer; then lower `llm_retry`'s attempts
/// to account for the up to 4 requests each of its attempts may make.
impl Classify for OpenAIError {
    fn classify(&self) -> Classification {
        match self {
            OpenAIError::ApiError(resp) => {
                let status = resp.status_code.as_u16();
                let body = body_of(&resp.api_error);
                let c = Classification::new(refine_kind(status, Some(&body))).with_status(status);
                // The headers are gone; the message's own hint ("Please try again in 20s.") is not.
                match body.hint {
                    Some(hint) => c.with_retry_after(RetryAfter::Delay(hint)),
                    None => c,
                }
            }
            OpenAIError::Reqwest(e) => e.classify(),
            OpenAIError::StreamError(e) => Classification::new(match &**e {
                // eventsource-stream's transport errors display as "Transport error: ...".
                StreamError::EventStream(s) if s.starts_with("Transport error") => ErrorKind::Connection,
                _ => ErrorKind::Other,
            }),
            OpenAIError::InvalidArgument(_) => Classification::new(ErrorKind::BadRequest),
            // JSONDeserialize, file errors, and variants behind async-openai features.
            _ => Classification::new(ErrorKind::Other),
        }
    }
}

/// The error body as [`refine_kind`] reads it. For a 5xx, async-openai does not parse the
/// body but puts all of it in `message`: parse that when there is no type or code.
fn body_of(e: &::async_openai::error::ApiError) -> ProviderBody {
    if e.r#type.is_none() && e.code.is_none() {
        let reparsed = ProviderBody::parse(e.message.as_bytes());
        if reparsed.is_known() {
            return reparsed;
        }
    }
    ProviderBody::openai(Some(e.message.clone()), e.r#type.clone(), e.code.clone())
}

impl From<OpenAIError> for ApiError {
    /// Classified as by `Classify for OpenAIError`, keeping the provider's message, type
    /// and code (masked and cut like any [`ApiError`] message).
    ///
    /// ```
    /// use async_openai::error::{ApiError as OpenAIApiError, ApiErrorResponse, OpenAIError};
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    ///
    /// let err = OpenAIError::ApiError(ApiErrorResponse {
    ///     status_code: reqwest::StatusCode::BAD_REQUEST,
    ///     api_error: OpenAIApiError {
    ///         message: "This model's maximum context length is 8192 tokens".into(),
    ///         r#type: Some("invalid_request_error".into()),
    ///         code: Some("context_length_exceeded".into()),
    ///         ..Default::default()
    ///     },
    /// });
    /// let e = ApiError::from(err);
    /// assert_eq!(e.kind(), ErrorKind::ContextLengthExceeded);
    /// assert_eq!(e.status(), Some(400));
    /// ```
    fn from(e: OpenAIError) -> Self {
        let c = e.classify();
        match e {
            OpenAIError::Reqwest(e) => ApiError::from(e),
            OpenAIError::ApiError(resp) => {
                let body = body_of(&resp.api_error);
                let e = ApiError::from_parts(c.kind, c.status, body.message, body.error_type, body.code);
                match c.retry_after {
                    Some(hint) => e.with_retry_after(hint),
                    None => e,
                }
            }
            other => ApiError::wrapping(c.kind, c.status, Arc::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::async_openai::error::{ApiError as OaiError, ApiErrorResponse};

    fn api(status: u16, ty: Option<&str>, code: Option<&str>, message: &str) -> OpenAIError {
        OpenAIError::ApiError(ApiErrorResponse {
            status_code: ::reqwest::StatusCode::from_u16(status).unwrap(),
            api_error: OaiError {
                message: message.into(),
                r#type: ty.map(Into::into),
                code: code.map(Into::into),
                ..Default::default()
            },
        })
    }

    #[test]
    fn api_errors() {
        let table = [
            (api(429, Some("insufficient_quota"), None, "quota"), ErrorKind::QuotaExhausted),
            (api(429, Some("requests"), Some("rate_limit_exceeded"), "slow"), ErrorKind::RateLimited),
            (
                api(400, Some("invalid_request_error"), Some("context_length_exceeded"), ""),
                ErrorKind::ContextLengthExceeded,
            ),
            (api(401, Some("invalid_request_error"), Some("invalid_api_key"), ""), ErrorKind::Auth),
            (api(404, Some("invalid_request_error"), Some("model_not_found"), ""), ErrorKind::NotFound),
            (api(400, Some("invalid_request_error"), Some("content_policy_violation"), ""), ErrorKind::ContentFiltered),
            (api(400, Some("invalid_request_error"), None, "bad"), ErrorKind::BadRequest),
            (api(500, None, None, "<html>oops</html>"), ErrorKind::Server),
            (
                api(503, None, None, r#"{"error":{"message":"The engine is currently overloaded"}}"#),
                ErrorKind::Overloaded,
            ),
            (
                api(500, None, None, r#"{"error":{"type":"insufficient_quota","message":"x"}}"#),
                ErrorKind::QuotaExhausted,
            ),
            (OpenAIError::InvalidArgument("n must be > 0".into()), ErrorKind::BadRequest),
            (
                OpenAIError::StreamError(Box::new(StreamError::EventStream("Transport error: reset".into()))),
                ErrorKind::Connection,
            ),
            (OpenAIError::StreamError(Box::new(StreamError::EventStream("Parse error: x".into()))), ErrorKind::Other),
            (OpenAIError::JSONDeserialize(serde_json::from_str::<u8>("x").unwrap_err(), "x".into()), ErrorKind::Other),
        ];
        for (err, kind) in table {
            let shown = err.to_string();
            assert_eq!(err.classify().kind, kind, "{shown}");
            assert_eq!(ApiError::from(err).kind(), kind, "{shown}");
        }
    }

    #[test]
    fn api_error_keeps_provider_fields_and_status() {
        let e = ApiError::from(api(429, Some("tokens"), Some("rate_limit_exceeded"), "key sk-abcdefghijkl"));
        assert_eq!(e.status(), Some(429));
        assert_eq!(e.provider_code(), Some("rate_limit_exceeded"));
        assert_eq!(e.provider_type(), Some("tokens"));
        assert_eq!(e.message(), Some("key sk-***"));
    }

    /// async-openai keeps the body but not the headers: the message's own hint is the one left.
    #[test]
    fn the_messages_hint_survives_without_the_headers() {
        use std::time::Duration;
        let message = "Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1m30s. Visit https://platform.openai.com/account/rate-limits to learn more.";
        let err = api(429, Some("requests"), Some("rate_limit_exceeded"), message);
        let hint = Some(RetryAfter::Delay(Duration::from_secs(90)));
        assert_eq!(err.classify().retry_after, hint);
        assert_eq!(ApiError::from(err).retry_after(), hint);
        let err = api(429, Some("requests"), Some("rate_limit_exceeded"), "Please try again later.");
        assert_eq!(err.classify().retry_after, None);
    }
}
