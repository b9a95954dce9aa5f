//! [`ApiError`]: a ready-made error type for code that calls an LLM API over HTTP.
//!
//! This file holds the error, its constructors, accessors and conversions. What it keeps of
//! a text is cleaned first: `clean` cuts messages and picks readable plain-text bodies, and
//! `mask` masks anything shaped like a credential.

mod clean;
mod mask;

use crate::ErrorKind;
use crate::classify::{Classification, Classify};
use crate::http::response_hint;
use crate::providers::{Provider, ProviderBody, refine_kind};
use crate::retry_after::{RetryAfter, should_retry_header};
use crate::timeout::Timeout;
use crate::validate::InvalidOutput;
use clean::{clean_message, clean_token, plain_text_message};
use core::fmt;
use std::sync::Arc;
use std::time::SystemTime;

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A failed LLM API call: what kind of failure, the HTTP status, what the provider said,
/// and when it asked to be called again.
///
/// Build it from a response with [`ApiError::from_response`] (status, headers and body;
/// the error bodies of OpenAI, Azure, Anthropic, Gemini, Bedrock and a dozen more are
/// understood, see [`classify_response`](crate::http::classify_response)), or with [`from_status`](ApiError::from_status),
/// [`connection`](ApiError::connection), [`timeout`](ApiError::timeout), [`new`](ApiError::new),
/// or by conversion from [`Timeout`], [`InvalidOutput`] and [`std::io::Error`] (and, with the
/// `reqwest` feature, `reqwest::Error`).
///
/// It keeps only what retrying needs and what a person needs to read: the kind, status,
/// Retry-After hint, `x-should-retry` verdict, and the provider's message, type and code.
/// It never keeps headers or the request, so no `Authorization` value can leak through it;
/// the message is cut to [`ApiError::MAX_MESSAGE_CHARS`] and anything that looks like a
/// credential is masked when the error is built: `sk-` keys, Google `AIza` keys, AWS `AKIA`/`ASIA`
/// key ids, `Bearer` tokens and `Basic` credentials (after any whitespace), and long values after
/// `api-key`, `x-api-key`, `api_key` or `key` (Azure OpenAI's hex keys).
///
/// ```
/// use http::HeaderMap;
/// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
///
/// let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
/// let err = ApiError::from_response(529, &HeaderMap::new(), body);
/// assert_eq!(err.kind(), ErrorKind::Overloaded);
/// assert_eq!(err.message(), Some("Overloaded"));
/// assert!(err.classify().kind.is_retryable_by_default());
/// assert_eq!(err.to_string(), "Overloaded (HTTP 529, overloaded_error): Overloaded");
/// ```
#[derive(Clone)]
pub struct ApiError(Box<Fields>);

/// What an [`ApiError`] records. Boxed, so that `Result<T, ApiError>` is a pointer wider than
/// `T` and the success path never moves 120 bytes of error slot.
#[derive(Clone)]
struct Fields {
    kind: ErrorKind,
    status: Option<u16>,
    retry_after: Option<RetryAfter>,
    should_retry: Option<bool>,
    message: Option<String>,
    provider_type: Option<String>,
    provider_code: Option<String>,
    /// The wrapped error, when built from one. Display shows its text (as `message`) and
    /// `source()` forwards to *its* source, as `#[error(transparent)]` would.
    source: Option<Source>,
}

impl ApiError {
    /// The longest message kept, in characters; a longer one is cut and ends in `…`.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::new(ErrorKind::Server, "x".repeat(10_000));
    /// assert_eq!(e.message().unwrap().chars().count(), ApiError::MAX_MESSAGE_CHARS + 1);
    /// ```
    pub const MAX_MESSAGE_CHARS: usize = 500;

    /// An error of `kind` with a message (masked and cut like a provider's message).
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::new(ErrorKind::ContentFiltered, "refused");
    /// assert_eq!(e.kind(), ErrorKind::ContentFiltered);
    /// assert_eq!(e.status(), None);
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Fields { message: clean_message(&message.into()), ..Fields::bare(kind) }.build()
    }

    /// An HTTP error response with only a status: the kind is [`ErrorKind::from_status`].
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::from_status(503);
    /// assert_eq!(e.kind(), ErrorKind::Server);
    /// assert_eq!(e.status(), Some(503));
    /// assert!(e.kind().is_retryable_by_default());
    /// ```
    pub fn from_status(status: u16) -> Self {
        Fields { status: Some(status), ..Fields::bare(ErrorKind::from_status(status)) }.build()
    }

    /// An HTTP error response: status, headers and body, classified as by
    /// [`classify_response`](crate::http::classify_response). Only the first
    /// [`MAX_BODY_BYTES`](crate::http::MAX_BODY_BYTES) of the body are read.
    ///
    /// The provider's message, `type` and `code` are kept; a body that is not a known JSON
    /// shape is kept as the message when it is short UTF-8 text (not HTML).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::{ApiError, ErrorKind, http::RetryAfter};
    /// use std::time::Duration;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", "2".parse().unwrap());
    /// let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    /// let e = ApiError::from_response(400, &headers, body);
    /// assert_eq!(e.kind(), ErrorKind::ContextLengthExceeded);
    /// assert_eq!(e.provider_code(), Some("context_length_exceeded"));
    /// assert_eq!(e.provider_type(), Some("invalid_request_error"));
    /// assert_eq!(e.retry_after(), Some(RetryAfter::Delay(Duration::from_secs(2))));
    /// ```
    pub fn from_response(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Self {
        Self::from_response_at(status, headers, body, SystemTime::now())
    }

    /// [`from_response`](ApiError::from_response) with the wall-clock time the response
    /// arrived given explicitly (used only to reject absurdly distant HTTP-date hints).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::ApiError;
    /// use std::time::SystemTime;
    /// let e = ApiError::from_response_at(500, &HeaderMap::new(), b"", SystemTime::UNIX_EPOCH);
    /// assert_eq!(e.status(), Some(500));
    /// ```
    pub fn from_response_at(status: u16, headers: &http::HeaderMap, body: &[u8], now: SystemTime) -> Self {
        let parsed = ProviderBody::parse(body);
        let message = match parsed.provider {
            Provider::Unknown => plain_text_message(body),
            _ => parsed.message.as_deref().and_then(clean_message),
        };
        let parsed = parsed.with_headers(headers);
        let kind = refine_kind(status, Some(&parsed));
        Fields {
            kind,
            status: Some(status),
            retry_after: response_hint(status, headers, Some(&parsed), now),
            should_retry: should_retry_header(headers),
            message,
            provider_type: parsed.error_type.as_deref().and_then(clean_token),
            provider_code: parsed.code.as_deref().and_then(clean_token),
            source: None,
        }
        .build()
    }

    /// The connection could not be made or was lost ([`ErrorKind::Connection`]).
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::connection("connection reset by peer");
    /// assert_eq!(e.kind(), ErrorKind::Connection);
    /// assert_eq!(e.to_string(), "Connection: connection reset by peer");
    /// ```
    pub fn connection(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Connection, message)
    }

    /// The call took too long ([`ErrorKind::Timeout`]): a client-side timeout. The runtime's
    /// own attempt timeouts arrive through `From<Timeout>` instead.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::timeout("no response within 30s");
    /// assert_eq!(e.kind(), ErrorKind::Timeout);
    /// ```
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Replaces the Retry-After hint.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, http::RetryAfter};
    /// use std::time::Duration;
    /// let e = ApiError::from_status(429).with_retry_after(RetryAfter::Delay(Duration::from_secs(1)));
    /// assert!(e.retry_after().is_some());
    /// ```
    pub fn with_retry_after(mut self, hint: RetryAfter) -> Self {
        self.0.retry_after = Some(hint);
        self
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// assert_eq!(ApiError::from_status(401).kind(), ErrorKind::Auth);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The HTTP status, when the error came from a response.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::ApiError::connection("refused").status(), None);
    /// ```
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// The provider's (or the wrapped error's) message, masked and cut.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::new(ErrorKind::Auth, "Incorrect API key provided: sk-proj-abcdefghijklmnop");
    /// assert_eq!(e.message(), Some("Incorrect API key provided: sk-***"));
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// The provider's error `code` (OpenAI: `insufficient_quota`, `context_length_exceeded`,
    /// `invalid_api_key`, ...).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::ApiError;
    /// let e = ApiError::from_response(429, &HeaderMap::new(), br#"{"error":{"message":"","code":"rate_limit_exceeded"}}"#);
    /// assert_eq!(e.provider_code(), Some("rate_limit_exceeded"));
    /// ```
    pub fn provider_code(&self) -> Option<&str> {
        self.0.provider_code.as_deref()
    }

    /// The provider's error `type` (OpenAI: `invalid_request_error`, ...; Anthropic:
    /// `overloaded_error`, `rate_limit_error`, ...).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::ApiError;
    /// let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    /// assert_eq!(ApiError::from_response(429, &HeaderMap::new(), body).provider_type(), Some("rate_limit_error"));
    /// ```
    pub fn provider_type(&self) -> Option<&str> {
        self.0.provider_type.as_deref()
    }

    /// When the server asked to be called again, if it said so.
    ///
    /// ```
    /// assert_eq!(llm_retry_runtime::ApiError::from_status(429).retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.0.retry_after
    }

    /// The server's `x-should-retry` verdict, if it sent one.
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::ApiError;
    /// let mut h = HeaderMap::new();
    /// h.insert("x-should-retry", "false".parse().unwrap());
    /// assert_eq!(ApiError::from_response(500, &h, b"").should_retry(), Some(false));
    /// ```
    pub fn should_retry(&self) -> Option<bool> {
        self.0.should_retry
    }
}

impl Fields {
    fn build(self) -> ApiError {
        ApiError(Box::new(self))
    }

    fn bare(kind: ErrorKind) -> Self {
        Fields {
            kind,
            status: None,
            retry_after: None,
            should_retry: None,
            message: None,
            provider_type: None,
            provider_code: None,
            source: None,
        }
    }
}

impl ApiError {
    /// An error from fields a client library already parsed (masked and cut here).
    #[cfg_attr(not(feature = "async-openai"), allow(dead_code))]
    pub(crate) fn from_parts(
        kind: ErrorKind,
        status: Option<u16>,
        message: Option<String>,
        provider_type: Option<String>,
        provider_code: Option<String>,
    ) -> Self {
        Fields {
            status,
            message: message.as_deref().and_then(clean_message),
            provider_type: provider_type.as_deref().and_then(clean_token),
            provider_code: provider_code.as_deref().and_then(clean_token),
            ..Fields::bare(kind)
        }
        .build()
    }

    /// Wraps another error: its text becomes the (masked) message.
    pub(crate) fn wrapping(kind: ErrorKind, status: Option<u16>, err: Source) -> Self {
        Fields { status, message: clean_message(&err.to_string()), source: Some(err), ..Fields::bare(kind) }.build()
    }
}

impl Classify for ApiError {
    /// The kind, status, Retry-After hint and `x-should-retry` verdict recorded in the error.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, Classify, ErrorKind};
    /// let c = ApiError::from_status(529).classify();
    /// assert_eq!((c.kind, c.status), (ErrorKind::Overloaded, Some(529)));
    /// ```
    fn classify(&self) -> Classification {
        let mut c = Classification::new(self.0.kind);
        c.status = self.0.status;
        c.retry_after = self.0.retry_after;
        c.should_retry = self.0.should_retry;
        c
    }
}

impl fmt::Display for ApiError {
    /// `Kind (HTTP status, code): message [not retryable: reason]`, leaving out the parts
    /// that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.kind.name())?;
        let token = self.0.provider_code.as_deref().or(self.0.provider_type.as_deref());
        match (self.0.status, token) {
            (Some(s), Some(t)) => write!(f, " (HTTP {s}, {t})")?,
            (Some(s), None) => write!(f, " (HTTP {s})")?,
            (None, Some(t)) => write!(f, " ({t})")?,
            (None, None) => {}
        }
        if let Some(m) = self.0.message.as_deref().filter(|m| !m.is_empty()) {
            write!(f, ": {m}")?;
        }
        if let Some(reason) = self.0.kind.never_retryable_reason() {
            write!(f, " [not retryable: {reason}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ApiError {
    /// Only the fields that are kept, all of them already masked; never headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("kind", &self.0.kind)
            .field("status", &self.0.status)
            .field("provider_type", &self.0.provider_type)
            .field("provider_code", &self.0.provider_code)
            .field("message", &self.0.message)
            .field("retry_after", &self.0.retry_after)
            .field("should_retry", &self.0.should_retry)
            .finish()
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent: our Display already shows the wrapped error's own text.
        self.0.source.as_deref().and_then(|e| e.source())
    }
}

impl From<Timeout> for ApiError {
    /// [`ErrorKind::Timeout`], with the timeout's description as the message.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind, Timeout};
    /// let e = ApiError::from(Timeout::attempt(std::time::Duration::from_secs(30)));
    /// assert_eq!(e.kind(), ErrorKind::Timeout);
    /// assert_eq!(e.message(), Some("the attempt timed out after 30s"));
    /// ```
    fn from(t: Timeout) -> Self {
        ApiError::wrapping(ErrorKind::Timeout, None, Arc::new(t))
    }
}

impl From<InvalidOutput> for ApiError {
    /// [`ErrorKind::InvalidOutput`], with the validator's reason in the message.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind, InvalidOutput};
    /// let e = ApiError::from(InvalidOutput::new("empty text"));
    /// assert_eq!(e.kind(), ErrorKind::InvalidOutput);
    /// assert_eq!(e.to_string(), "InvalidOutput: unusable output: empty text");
    /// ```
    fn from(e: InvalidOutput) -> Self {
        ApiError::wrapping(ErrorKind::InvalidOutput, None, Arc::new(e))
    }
}

impl From<std::io::Error> for ApiError {
    /// Classified as by `Classify for std::io::Error`: refused, reset and the like are
    /// [`ErrorKind::Connection`], `TimedOut` is [`ErrorKind::Timeout`].
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    /// let e = ApiError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    /// assert_eq!(e.kind(), ErrorKind::Connection);
    /// ```
    fn from(e: std::io::Error) -> Self {
        let c = e.classify();
        ApiError::wrapping(c.kind, c.status, Arc::new(e))
    }
}
