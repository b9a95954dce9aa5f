//! What the server saw: [`RecordedRequest`], [`Route`] and [`Outcome`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::Value;
use tokio::time::Instant;

use crate::Fault;

/// The request headers that carry a retry attempt number, in the order they are looked up: our own
/// `x-llm-retry-attempt`, then the OpenAI/Anthropic SDKs' `x-stainless-retry-count`.
///
/// ```
/// assert_eq!(llm_retry_testkit::ATTEMPT_HEADERS[0], "x-llm-retry-attempt");
/// ```
pub const ATTEMPT_HEADERS: [&str; 2] = ["x-llm-retry-attempt", "x-stainless-retry-count"];

/// Request headers that carry credentials. They are never recorded; [`RecordedRequest::had_authorization`]
/// says whether any was present.
///
/// ```
/// assert!(llm_retry_testkit::SECRET_HEADERS.contains(&"authorization"));
/// ```
pub const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "x-api-key", "api-key"];

/// Which API a request was sent to.
///
/// ```
/// use llm_retry_testkit::Route;
/// assert_eq!(Route::from_path("/v1/chat/completions"), Route::ChatCompletions);
/// assert_eq!(Route::from_path("/v1/messages"), Route::Messages);
/// assert_eq!(Route::from_path("/v2/nope"), Route::Unknown);
/// assert_eq!(Route::Messages.path(), Some("/v1/messages"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /v1/chat/completions` (OpenAI).
    ChatCompletions,
    /// `POST /v1/messages` (Anthropic).
    Messages,
    /// Any other path: answered `404`.
    Unknown,
}

impl Route {
    /// The route a request path (without query) belongs to.
    ///
    /// ```
    /// use llm_retry_testkit::Route;
    /// assert_eq!(Route::from_path("/v1/chat/completions/"), Route::ChatCompletions);
    /// ```
    pub fn from_path(path: &str) -> Route {
        match path.strip_suffix('/').unwrap_or(path) {
            "/v1/chat/completions" => Route::ChatCompletions,
            "/v1/messages" => Route::Messages,
            _ => Route::Unknown,
        }
    }

    /// The route's path, `None` for [`Route::Unknown`].
    ///
    /// ```
    /// use llm_retry_testkit::Route;
    /// assert_eq!(Route::ChatCompletions.path(), Some("/v1/chat/completions"));
    /// assert_eq!(Route::Unknown.path(), None);
    /// ```
    pub fn path(self) -> Option<&'static str> {
        match self {
            Route::ChatCompletions => Some("/v1/chat/completions"),
            Route::Messages => Some("/v1/messages"),
            Route::Unknown => None,
        }
    }
}

/// What the server answered to a request.
///
/// ```
/// use llm_retry_testkit::{Fault, Outcome};
/// let o = Outcome::Served(Fault::Status(500));
/// assert_eq!(o.fault(), Some(&Fault::Status(500)));
/// assert_eq!(Outcome::Rejected { status: 400 }.fault(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The request was valid and got this fault from a script, the chaos or the default ([`Fault::Ok`]).
    Served(Fault),
    /// The rate limiter refused it with a `429`; a token is available this long after arrival.
    RateLimited {
        /// Exact time until the next token (the headers round it up).
        retry_after: Duration,
    },
    /// The request was invalid and answered with this status without consuming a script step:
    /// `404` unknown route, `405` wrong method, `413` body too large, `400` malformed body.
    Rejected {
        /// The status sent.
        status: u16,
    },
}

impl Outcome {
    /// The fault served, if the request got that far.
    ///
    /// ```
    /// use llm_retry_testkit::{Fault, Outcome};
    /// assert_eq!(Outcome::Served(Fault::Ok).fault(), Some(&Fault::Ok));
    /// ```
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Outcome::Served(f) => Some(f),
            _ => None,
        }
    }
}

/// One request the server received, as [`ChaosServer::requests`](crate::ChaosServer::requests) returns it.
///
/// Credentials are never stored: the [`SECRET_HEADERS`] are removed from [`headers`](Self::headers) and only
/// [`had_authorization`](Self::had_authorization) tells they were there.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use llm_retry_testkit::{ChaosServer, Fault, Route};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let server = ChaosServer::start().await;
/// let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
/// let mut tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
/// let head = format!(
///     "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-secret\r\n\
///      x-llm-retry-attempt: 2\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
///     body.len()
/// );
/// tcp.write_all(head.as_bytes()).await.unwrap();
/// tcp.write_all(body.as_bytes()).await.unwrap();
/// let mut response = Vec::new();
/// tcp.read_to_end(&mut response).await.unwrap();
///
/// let seen = &server.requests()[0];
/// assert_eq!(seen.route, Route::ChatCompletions);
/// assert_eq!(seen.attempt, Some(2));
/// assert!(seen.had_authorization);
/// assert!(seen.headers.get("authorization").is_none());
/// assert_eq!(seen.fault(), Some(&Fault::Ok));
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// Position among all requests this server received, from 0.
    pub seq: usize,
    /// When the request head arrived, on tokio's clock.
    pub at: Instant,
    /// The HTTP method.
    pub method: Method,
    /// The request path (without query).
    pub path: String,
    /// The API the path belongs to.
    pub route: Route,
    /// The attempt number from the first of the [`ATTEMPT_HEADERS`] present that parses as an integer.
    pub attempt: Option<u32>,
    /// All request headers except the [`SECRET_HEADERS`].
    pub headers: HeaderMap,
    /// Whether any of the [`SECRET_HEADERS`] was sent (their values are never stored).
    pub had_authorization: bool,
    /// The raw body (empty when it was not read: unknown route, wrong method, too large).
    pub body: Bytes,
    /// The body parsed as JSON, when it was a JSON object.
    pub json: Option<Value>,
    /// Whether the body asked for a stream (`"stream": true`).
    pub stream: bool,
    /// What the server answered.
    pub outcome: Outcome,
}

impl RecordedRequest {
    /// The fault served, if the request was valid and not rate-limited.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::ChaosServer;
    /// let server = ChaosServer::start().await;
    /// assert!(server.requests().iter().all(|r| r.fault().is_some()));
    /// # }
    /// ```
    pub fn fault(&self) -> Option<&Fault> {
        self.outcome.fault()
    }

    /// A recorded header's value, if present and valid UTF-8.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::ChaosServer;
    /// let server = ChaosServer::start().await;
    /// for r in server.requests() {
    ///     let _ = r.header("user-agent");
    /// }
    /// # }
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Splits `headers` into recordable headers and whether credentials were present.
pub(crate) fn sanitize(headers: &HeaderMap) -> (HeaderMap, bool) {
    let mut kept = headers.clone();
    let mut had = false;
    for name in SECRET_HEADERS {
        if kept.remove(name).is_some() {
            had = true;
        }
        // `remove` drops every value of a repeated header; make sure none is left.
        debug_assert!(kept.get(name).is_none());
    }
    (kept, had)
}

/// The attempt number from [`ATTEMPT_HEADERS`].
pub(crate) fn attempt(headers: &HeaderMap) -> Option<u32> {
    ATTEMPT_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse().ok()))
}
