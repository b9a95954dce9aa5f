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
/// says whether any was present. Besides `authorization` (OpenAI, Bedrock's SigV4 signature and API keys):
/// Anthropic's `x-api-key`, Azure's `api-key`, Gemini's `x-goog-api-key` and AWS's session token.
///
/// ```
/// assert!(llm_retry_testkit::SECRET_HEADERS.contains(&"authorization"));
/// assert!(llm_retry_testkit::SECRET_HEADERS.contains(&"x-goog-api-key"));
/// ```
pub const SECRET_HEADERS: [&str; 6] =
    ["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token"];

/// Which API a request was sent to; it chooses the provider whose shapes the server answers in (its
/// persona).
///
/// ```
/// use llm_retry_testkit::Route;
/// assert_eq!(Route::from_path("/v1/chat/completions"), Route::ChatCompletions);
/// assert_eq!(Route::from_path("/v1/messages"), Route::Messages);
/// assert_eq!(Route::from_path("/v1beta/models/gemini-2.0-flash:generateContent"), Route::GenerateContent);
/// assert_eq!(Route::from_path("/model/amazon.nova-lite-v1:0/converse"), Route::Converse);
/// assert_eq!(Route::from_path("/openai/deployments/gpt4o/chat/completions"), Route::AzureChatCompletions);
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
    /// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent` (Google Gemini: AI
    /// Studio's `/v1beta` and `/v1`, and any path with `/models/{model}:` such as Vertex AI's). The body
    /// needs `contents`; the stream is SSE (`alt=sse`).
    GenerateContent,
    /// `POST /model/{modelId}/converse` (AWS Bedrock's Converse API). JSON only: Bedrock streams on
    /// another path, in AWS's binary event-stream framing.
    Converse,
    /// `POST /model/{modelId}/invoke` (AWS Bedrock's InvokeModel). Any JSON object is accepted, and a
    /// reply has the shape Anthropic's models answer in on Bedrock.
    Invoke,
    /// `POST /openai/deployments/{deployment}/chat/completions?api-version=...` (Azure OpenAI): OpenAI's
    /// shapes, with Azure's rate-limit, auth and content-filter answers.
    AzureChatCompletions,
    /// Any other path: answered `404`.
    Unknown,
}

impl Route {
    /// The route a request path (without query) belongs to.
    ///
    /// ```
    /// use llm_retry_testkit::Route;
    /// assert_eq!(Route::from_path("/v1/chat/completions/"), Route::ChatCompletions);
    /// assert_eq!(Route::from_path("/v1/models/gemini-pro:streamGenerateContent"), Route::GenerateContent);
    /// assert_eq!(Route::from_path("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke"), Route::Invoke);
    /// assert_eq!(Route::from_path("/model//converse"), Route::Unknown);
    /// ```
    pub fn from_path(path: &str) -> Route {
        let path = path.strip_suffix('/').unwrap_or(path);
        match path {
            "/v1/chat/completions" => return Route::ChatCompletions,
            "/v1/messages" => return Route::Messages,
            _ => {}
        }
        if gemini_model(path).is_some() {
            Route::GenerateContent
        } else if let Some((_, action)) = bedrock_model(path) {
            if action == "converse" { Route::Converse } else { Route::Invoke }
        } else if azure_deployment(path).is_some() {
            Route::AzureChatCompletions
        } else {
            Route::Unknown
        }
    }

    /// The route's path, with its variable parts in braces; `None` for [`Route::Unknown`].
    ///
    /// ```
    /// use llm_retry_testkit::Route;
    /// assert_eq!(Route::ChatCompletions.path(), Some("/v1/chat/completions"));
    /// assert_eq!(Route::Converse.path(), Some("/model/{modelId}/converse"));
    /// assert_eq!(Route::Unknown.path(), None);
    /// ```
    pub fn path(self) -> Option<&'static str> {
        match self {
            Route::ChatCompletions => Some("/v1/chat/completions"),
            Route::Messages => Some("/v1/messages"),
            Route::GenerateContent => Some("/v1beta/models/{model}:generateContent"),
            Route::Converse => Some("/model/{modelId}/converse"),
            Route::Invoke => Some("/model/{modelId}/invoke"),
            Route::AzureChatCompletions => Some("/openai/deployments/{deployment}/chat/completions"),
            Route::Unknown => None,
        }
    }
}

/// Gemini's `.../models/{model}:generateContent` or `:streamGenerateContent`: the model, and whether it streams.
pub(crate) fn gemini_model(path: &str) -> Option<(&str, bool)> {
    let (_, tail) = path.rsplit_once("/models/")?;
    let (model, method) = tail.split_once(':')?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    (!model.is_empty() && !model.contains('/')).then_some((model, stream))
}

/// Bedrock's `/model/{modelId}/converse` or `/invoke`: the model id, and the action.
pub(crate) fn bedrock_model(path: &str) -> Option<(&str, &str)> {
    let (model, action) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    (matches!(action, "converse" | "invoke") && !model.is_empty() && !model.contains('/')).then_some((model, action))
}

/// Azure's `/openai/deployments/{deployment}/chat/completions`: the deployment.
pub(crate) fn azure_deployment(path: &str) -> Option<&str> {
    let deployment = path.strip_prefix("/openai/deployments/")?.strip_suffix("/chat/completions")?;
    (!deployment.is_empty() && !deployment.contains('/')).then_some(deployment)
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
    /// The request rate limiter refused it with a `429`; a token is available this long after arrival.
    RateLimited {
        /// Exact time until the next token (the headers round it up).
        retry_after: Duration,
    },
    /// The tokens-per-minute limiter refused it with a `429`: it needs `tokens`, which are back this long
    /// after arrival.
    TokensLimited {
        /// Exact time until enough tokens are back (the headers round it up).
        retry_after: Duration,
        /// The request's tokens ([`estimate_tokens`](crate::estimate_tokens)).
        tokens: u64,
    },
    /// The request needs more tokens than the tokens-per-minute limiter ever holds: a `429` it can
    /// never get past.
    RequestTooLarge {
        /// The request's tokens ([`estimate_tokens`](crate::estimate_tokens)).
        tokens: u64,
        /// The most the limiter holds (its burst).
        limit: u64,
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
