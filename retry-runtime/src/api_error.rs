//! [`ApiError`]: a ready-made error type for code that calls an LLM API over HTTP.

use crate::ErrorKind;
use crate::classify::{Classification, Classify};
use crate::http::{Provider, ProviderBody, refine_kind, response_hint};
use crate::retry_after::{RetryAfter, should_retry_header};
use crate::timeout::Timeout;
use crate::validate::InvalidOutput;
use core::fmt;
use std::sync::Arc;
use std::time::SystemTime;

type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A failed LLM API call: what kind of failure, the HTTP status, what the provider said,
/// and when it asked to be called again.
///
/// Build it from a response with [`ApiError::from_response`] (status, headers and body;
/// OpenAI and Anthropic error bodies are understood), or with [`from_status`](ApiError::from_status),
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

/// The longest provider `type`/`code` kept.
const MAX_TOKEN_CHARS: usize = 100;

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
    /// [`classify_response`](crate::classify_response). Only the first
    /// [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) of the body are read.
    ///
    /// The provider's message, `type` and `code` are kept; a body that is not a known JSON
    /// shape is kept as the message when it is short UTF-8 text (not HTML).
    ///
    /// ```
    /// use http::HeaderMap;
    /// use llm_retry_runtime::{ApiError, ErrorKind, RetryAfter};
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
        let kind = refine_kind(status, Some(&parsed));
        let message = match parsed.provider {
            Provider::Unknown => plain_text_message(body),
            _ => parsed.message.as_deref().and_then(clean_message),
        };
        Fields {
            kind,
            status: Some(status),
            retry_after: response_hint(status, headers, now),
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
    /// use llm_retry_runtime::{ApiError, RetryAfter};
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

/// Masks API keys in `s` and cuts it to [`ApiError::MAX_MESSAGE_CHARS`]; `None` if empty.
fn clean_message(s: &str) -> Option<String> {
    clean(s, ApiError::MAX_MESSAGE_CHARS)
}

fn clean_token(s: &str) -> Option<String> {
    clean(s, MAX_TOKEN_CHARS)
}

fn clean(s: &str, max_chars: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let masked = mask_secrets(s);
    Some(match masked.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &masked[..cut]),
        None => masked,
    })
}

/// A body of no known JSON shape, kept as the message when it is short, readable text.
fn plain_text_message(body: &[u8]) -> Option<String> {
    let head = body.get(..4 * ApiError::MAX_MESSAGE_CHARS).unwrap_or(body);
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // Cut in the middle of a character by the slice above: keep the whole ones.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let text = text.trim();
    let readable = !text.starts_with('<') && !text.chars().any(|c| c.is_control() && !c.is_whitespace());
    if readable { clean_message(text) } else { None }
}

/// Masks every credential in `s` that has a recognisable shape, keeping what names it:
/// - `sk-` and 8+ key characters (OpenAI, Anthropic, ...): `sk-***`;
/// - `AIza` and 8+ key characters (Google API keys are `AIza` and 35): `AIza***`;
/// - `AKIA` or `ASIA` and 16+ upper-case letters and digits (AWS access key ids): `AKIA***`;
/// - `Bearer`, any whitespace, 8+ token characters: `Bearer ***`;
/// - `Basic`, any whitespace, a base64 credential: `Basic ***`;
/// - a word ending in `key` (`api-key`, `x-api-key`, `api_key`, `apikey`, `key`), then
///   separators (whitespace, `:`, `=`, quotes), then 32+ key characters (Azure OpenAI's keys
///   are 32 hex digits): `api-key: ***`.
///
/// Schemes and `key` are matched in any case; whitespace is any Unicode whitespace. "Key
/// characters" are ASCII letters, digits, `-` and `_`; "token characters" add `.~+/=`.
///
/// Every rule is tried at every position, and the parts to mask are merged, so a secret is
/// masked whole even when another rule's match overlaps it. Linear in `s`: each rule's run of
/// characters is measured once (see [`Run`]), the output is never longer than `s`, and slices
/// are only taken at ASCII bytes or at the ends of whole characters.
pub(crate) fn mask_secrets(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut runs = Runs::default();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut pending: Option<Masked> = None;
    for at in 0..bytes.len() {
        let Some(found) = secret_at(s, at, &mut runs) else { continue };
        match pending.as_mut() {
            Some(cur) if found.start <= cur.end => {
                cur.start = cur.start.min(found.start);
                cur.end = cur.end.max(found.end);
            }
            _ => {
                if let Some(done) = pending.replace(found) {
                    copied = done.write(s, copied, &mut out);
                }
            }
        }
    }
    if let Some(done) = pending {
        copied = done.write(s, copied, &mut out);
    }
    out.push_str(s.get(copied..).unwrap_or_default());
    out
}

/// A part of the text to replace: `s[start..end]` becomes `with`.
struct Masked {
    start: usize,
    end: usize,
    with: &'static str,
}

impl Masked {
    /// Writes `s[copied..start]` and the mask; returns where the copy resumes.
    fn write(&self, s: &str, copied: usize, out: &mut String) -> usize {
        out.push_str(s.get(copied..self.start.max(copied)).unwrap_or_default());
        out.push_str(self.with);
        self.end.max(copied)
    }
}

fn key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn token_byte(c: u8) -> bool {
    key_byte(c) || matches!(c, b'.' | b'~' | b'+' | b'/' | b'=')
}

fn upper_byte(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn base64_byte(c: u8) -> bool {
    key_byte(c) || matches!(c, b'+' | b'/' | b'=')
}

/// The end of the run of bytes satisfying `is_in` that starts at a given index, remembering the
/// last run measured. Each rule asks about positions in increasing order, and every position
/// inside a run has the same end, so a run is walked once however many matches start in it
/// (`sk-sk-sk-...`): what keeps [`mask_secrets`] linear.
struct Run {
    is_in: fn(u8) -> bool,
    /// `bytes[from..to]` all satisfy `is_in`, and `bytes[to]` does not (or is the end).
    from: usize,
    to: usize,
}

impl Run {
    fn new(is_in: fn(u8) -> bool) -> Self {
        // Empty: `from > to` matches no index.
        Run { is_in, from: 1, to: 0 }
    }

    /// The end of the run starting at `at`.
    fn end(&mut self, bytes: &[u8], at: usize) -> usize {
        if (self.from..=self.to).contains(&at) {
            return self.to;
        }
        let len = bytes.get(at..).map_or(0, |rest| rest.iter().take_while(|&&c| (self.is_in)(c)).count());
        (self.from, self.to) = (at, at.saturating_add(len));
        self.to
    }

    /// How long the run starting at `at` is.
    fn len(&mut self, bytes: &[u8], at: usize) -> usize {
        self.end(bytes, at).saturating_sub(at)
    }
}

/// One [`Run`] per rule.
struct Runs {
    sk: Run,
    google: Run,
    aws: Run,
    bearer: Run,
    basic: Run,
    keyed: Run,
}

impl Default for Runs {
    fn default() -> Self {
        Runs {
            sk: Run::new(key_byte),
            google: Run::new(key_byte),
            aws: Run::new(upper_byte),
            bearer: Run::new(token_byte),
            basic: Run::new(base64_byte),
            keyed: Run::new(key_byte),
        }
    }
}

/// The secret whose rule anchors at byte `at`: a prefix starting there, or a keyword ending
/// just before it followed by whitespace or separators.
fn secret_at(s: &str, at: usize, runs: &mut Runs) -> Option<Masked> {
    let bytes = s.as_bytes();
    let rest = bytes.get(at..)?;
    let prefixed = |prefix_len: usize, run: &mut Run, min: usize, with: &'static str| {
        let start = at.saturating_add(prefix_len);
        (run.len(bytes, start) >= min).then(|| Masked { start, end: run.end(bytes, start), with })
    };
    if rest.starts_with(b"sk-") {
        return prefixed(3, &mut runs.sk, 8, "***");
    }
    if rest.starts_with(b"AIza") {
        return prefixed(4, &mut runs.google, 8, "***");
    }
    if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") {
        return prefixed(4, &mut runs.aws, 16, "***");
    }
    let ends_with = |word: &[u8]| {
        at.checked_sub(word.len()).and_then(|from| bytes.get(from..at)).is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    // The keyword is ASCII and ends at `at`, so `at` is a character boundary.
    let after = || s.get(at..).unwrap_or_default();
    if ends_with(b"bearer") || ends_with(b"basic") {
        let gap = after().len().saturating_sub(after().trim_start().len());
        if gap == 0 {
            return None;
        }
        let start = at.saturating_add(gap);
        let (run, end) = if ends_with(b"bearer") {
            let end = runs.bearer.end(bytes, start);
            (end.saturating_sub(start) >= 8, end)
        } else {
            let end = runs.basic.end(bytes, start);
            (bytes.get(start..end).is_some_and(is_basic_credential), end)
        };
        return run.then_some(Masked { start: at, end, with: " ***" });
    }
    if ends_with(b"key") {
        let is_separator = |c: char| c.is_whitespace() || matches!(c, ':' | '=' | '"' | '\'' | '`');
        let gap = after().len().saturating_sub(after().trim_start_matches(is_separator).len());
        let start = at.saturating_add(gap);
        if gap > 0 && runs.keyed.len(bytes, start) >= 32 {
            // Show the prefix of a key of a known shape (`key=AIza***`), as its own rule would.
            let value = bytes.get(start..).unwrap_or_default();
            let shown = match value {
                [b's', b'k', b'-', ..] => 3,
                [b'A', b'I', b'z', b'a', ..] | [b'A', b'K' | b'S', b'I', b'A', ..] => 4,
                _ => 0,
            };
            return Some(Masked { start: start.saturating_add(shown), end: runs.keyed.end(bytes, start), with: "***" });
        }
    }
    None
}

/// Whether the run after `Basic ` is a credential (base64 of `user:password`) rather than a
/// word ("Basic authentication failed", "Basic realm=..."): masked if it is not a plain word,
/// or if it decodes to something with a `:` in it.
fn is_basic_credential(run: &[u8]) -> bool {
    let word = run.iter().rposition(|&c| c != b'=').and_then(|last| run.get(..=last)).unwrap_or_default();
    let plain_word = match word {
        [first, rest @ ..] => {
            first.is_ascii_alphabetic() && rest.iter().all(|&c| c.is_ascii_lowercase() || c == b'-' || c == b'_')
        }
        [] => true,
    };
    run.len() >= 4 && (!plain_word || base64_has_colon(run))
}

/// Whether `run`, decoded as base64 (standard or URL-safe, up to its padding), holds a `:`.
fn base64_has_colon(run: &[u8]) -> bool {
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in run {
        let sextet = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if (acc >> bits) & 0xff == u32::from(b':') {
                return true;
            }
            acc &= (1 << bits) - 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys() {
        let table = [
            ("key sk-abcdefgh end", "key sk-*** end"),
            ("sk-proj-AbC_123-xyz9", "sk-***"),
            ("sk-ant-api03-abcdefghijk.", "sk-***."),
            ("sk-short", "sk-short"),
            ("desk-top sk-", "desk-top sk-"),
            ("Authorization: Bearer abc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("bearer tok", "bearer tok"),
            ("two sk-aaaaaaaa and sk-bbbbbbbbbb", "two sk-*** and sk-***"),
            ("ünïcødé sk-12345678é", "ünïcødé sk-***é"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(mask_secrets(input), want, "{input:?}");
        }
    }

    /// Builds an `ApiError` from `input` and checks that `secret` is in none of its outputs
    /// and that its message is `want`.
    #[track_caller]
    fn assert_masked(input: &str, secret: &str, want: &str) {
        let e = ApiError::new(ErrorKind::Auth, input);
        for shown in [e.to_string(), format!("{e:?}"), e.message().unwrap_or_default().to_owned()] {
            assert!(!shown.contains(secret), "{secret:?} leaked from {input:?}: {shown}");
        }
        assert_eq!(e.message(), Some(want), "{input:?}");
    }

    #[test]
    fn bearer_tokens_after_any_whitespace_are_masked() {
        let token = "abc.def.ghi-jkl";
        for (input, want) in [
            ("Authorization: Bearer  abc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("Authorization: Bearer\tabc.def.ghi-jkl", "Authorization: Bearer ***"),
            ("bearer \t \n abc.def.ghi-jkl end", "bearer *** end"),
            ("BEARER\u{a0}abc.def.ghi-jkl", "BEARER ***"),
        ] {
            assert_masked(input, token, want);
        }
    }

    #[test]
    fn google_api_keys_are_masked() {
        let key = "AIzaSyA1b2C3d4E5f6G7h8I9j0K-L_mnopqrstu";
        assert_eq!(key.len(), 39);
        assert_masked(
            &format!("API key not valid: {key}. Please pass a valid API key."),
            "SyA1b2C3",
            "API key not valid: AIza***. Please pass a valid API key.",
        );
        assert_masked(&format!("GET /v1/models?key={key}"), "SyA1b2C3", "GET /v1/models?key=AIza***");
    }

    #[test]
    fn aws_access_key_ids_are_masked() {
        assert_masked(
            "The security token AKIAIOSFODNN7EXAMPLE is invalid",
            "IOSFODNN7",
            "The security token AKIA*** is invalid",
        );
        assert_masked(
            "Credential=ASIAY34FZKBOKMUTVV7A/20260101/us-east-1",
            "Y34FZKBO",
            "Credential=ASIA***/20260101/us-east-1",
        );
    }

    #[test]
    fn hex_api_key_values_are_masked() {
        let key = "0123456789abcdef0123456789ABCDEF";
        for (input, want) in [
            (format!("api-key: {key}"), "api-key: ***"),
            (format!("{{\"api_key\": \"{key}\"}}"), "{\"api_key\": \"***\"}"),
            (format!("x-api-key={key}&a=b"), "x-api-key=***&a=b"),
            (format!("apikey '{key}' rejected"), "apikey '***' rejected"),
            (format!("invalid subscription key\t{key}."), "invalid subscription key\t***."),
        ] {
            assert_masked(&input, "0123456789abcdef", want);
        }
    }

    #[test]
    fn basic_credentials_are_masked() {
        // base64("user:password") and base64("api:sk")
        for (input, want) in [
            ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
            ("authorization: basic\t\tdXNlcjpwYXNzd29yZA== rejected", "authorization: basic *** rejected"),
            ("BASIC  YXBpOnNr", "BASIC ***"),
        ] {
            assert_masked(input, "dXNlcjpw", want);
            assert_masked(input, "YXBpOnNr", want);
        }
        // Words after "Basic" are left alone.
        assert_eq!(mask_secrets("Basic authentication failed"), "Basic authentication failed");
    }

    #[test]
    fn overlapping_shapes_are_masked_whole() {
        let hex = "0123456789abcdef0123456789abcdef";
        let table = [
            // The `sk-` key's run swallows a keyword: what follows the keyword is masked too.
            ("sk-aaaaaaaa_bearer abcdefghij", "sk-***".to_owned()),
            (&*format!("sk-aaaaaaaa_api-key: {hex}"), "sk-***: ***".to_owned()),
            (&*format!("Bearer abcdefgh_api_key=\"{hex}\""), "Bearer ***\"***\"".to_owned()),
            // A key of a known shape after `key` keeps its prefix.
            ("key: AKIAIOSFODNN7EXAMPLEabcdefghijklmnop", "key: AKIA***".to_owned()),
            (&*format!("api_key={hex} sk-proj-abcdefghijkl"), "api_key=*** sk-***".to_owned()),
        ];
        for (input, want) in table {
            assert_eq!(mask_secrets(input), want, "{input:?}");
            assert_eq!(mask_secrets(&want), want, "masked twice: {input:?}");
        }
    }

    #[test]
    fn words_after_schemes_and_keys_are_kept() {
        for text in [
            "WWW-Authenticate: Basic realm=\"api\"",
            "Basic authentication failed; basic auth is off",
            "Bearer error=\"invalid_token\"",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "AKIA too short AKIAABCDEFGH",
            "key: 0123456789abcdef",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        ] {
            assert_eq!(mask_secrets(text), text);
        }
    }

    /// Linear time: the masking used to look for `bearer ` afresh after each `sk-`, so 256 KiB
    /// of `sk-x ` took seconds even in a release build. The bound here is loose: a linear pass
    /// takes milliseconds.
    #[test]
    /// Hostile inputs that made the old masking quadratic (256 KiB of `sk-x ` took 5.9 s).
    /// Their time is measured, not asserted: `cargo test --release -p llm-retry-runtime --lib
    /// masking_hostile_text -- --nocapture` prints it (docs/RELIABILITY.md).
    fn masking_hostile_text_is_masked_whole() {
        let n = 1 << 18;
        for text in [
            "sk-x ".repeat(n / 5),
            "sk-".repeat(n / 3),
            "AIza".repeat(n / 4),
            "AKIAa".repeat(n / 5),
            "key:".repeat(n / 4),
            "bearer basic ".repeat(n / 13),
            format!("basic {}", "a".repeat(n)),
            "sk-aaaaaaaa_bearer key: ".repeat(n / 24),
        ] {
            let started = std::time::Instant::now();
            let masked = mask_secrets(&text);
            println!("{:>8} bytes of {:?}...: masked in {:?}", text.len(), &text[..12], started.elapsed());
            assert!(masked.len() <= text.len());
            assert_eq!(mask_secrets(&masked), masked, "masking is idempotent");
        }
    }

    #[test]
    fn messages_are_cut_on_char_boundaries() {
        let e = ApiError::new(ErrorKind::Server, "é".repeat(1000));
        let m = e.message().unwrap();
        assert_eq!(m.chars().count(), ApiError::MAX_MESSAGE_CHARS + 1);
        assert!(m.ends_with('…'));
        assert_eq!(ApiError::new(ErrorKind::Server, "  ").message(), None);
    }

    #[test]
    fn plain_text_bodies() {
        assert_eq!(plain_text_message(b"upstream connect error"), Some("upstream connect error".into()));
        assert_eq!(plain_text_message(b"<html><body>502</body></html>"), None);
        assert_eq!(plain_text_message(b"\xff\xfe"), None);
        assert_eq!(plain_text_message(b"a\x00b"), None);
    }
}
