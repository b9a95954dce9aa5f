//! `reqwest` 0.13: [`Classify`] for `reqwest::Error`, and [`ApiError`] from a response.

use crate::ErrorKind;
use crate::api_error::ApiError;
use crate::classify::{Classification, Classify};
use crate::http::MAX_BODY_BYTES;
use crate::std_impls::io_kind;
use std::sync::Arc;

/// Classifies a reqwest error (feature `reqwest`).
///
/// In order: a timeout anywhere in the source chain is [`ErrorKind::Timeout`]; an error
/// with a status (from `error_for_status`) is [`ErrorKind::from_status`]; a connect error
/// is [`ErrorKind::Connection`]; otherwise the first `std::io::Error` in the source chain
/// decides (reset, broken pipe, unexpected EOF: [`ErrorKind::Connection`]); failing that,
/// a request or body error (the connection broke while sending or reading) is
/// [`ErrorKind::Connection`], and builder, redirect, decode and upgrade errors are
/// [`ErrorKind::Other`].
///
/// ```
/// use llm_retry_runtime::{Classify, ErrorKind};
///
/// let resp = reqwest::Response::from(http::Response::builder().status(503).body("").unwrap());
/// let err = resp.error_for_status().unwrap_err();
/// let c = err.classify();
/// assert_eq!((c.kind, c.status), (ErrorKind::Server, Some(503)));
/// ```
impl Classify for ::reqwest::Error {
    fn classify(&self) -> Classification {
        if self.is_timeout() {
            return Classification::new(ErrorKind::Timeout);
        }
        if let Some(status) = self.status() {
            let status = status.as_u16();
            return Classification::new(ErrorKind::from_status(status)).with_status(status);
        }
        if is_connect(self) {
            return Classification::new(ErrorKind::Connection);
        }
        if let Some(kind) = io_kind_in_chain(self) {
            return Classification::new(kind);
        }
        if self.is_request() || self.is_body() {
            return Classification::new(ErrorKind::Connection);
        }
        Classification::new(ErrorKind::Other)
    }
}

#[cfg(not(all(target_arch = "wasm32", any(target_os = "unknown", target_os = "none"))))]
fn is_connect(e: &::reqwest::Error) -> bool {
    e.is_connect()
}

#[cfg(all(target_arch = "wasm32", any(target_os = "unknown", target_os = "none")))]
fn is_connect(_: &::reqwest::Error) -> bool {
    false
}

/// The kind of the first `io::Error` in the source chain that says something.
fn io_kind_in_chain(e: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
    let mut source = e.source();
    // Bounded, in case a hand-written error's chain loops.
    for _ in 0..32 {
        let err = source?;
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io_kind(io.kind()) {
                ErrorKind::Other => {}
                kind => return Some(kind),
            }
        }
        source = err.source();
    }
    None
}

impl From<::reqwest::Error> for ApiError {
    /// Classified as by `Classify for reqwest::Error`. The URL is stripped first: it may
    /// carry a key in its query string.
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    ///
    /// let resp = reqwest::Response::from(http::Response::builder().status(429).body("").unwrap());
    /// let e = ApiError::from(resp.error_for_status().unwrap_err());
    /// assert_eq!((e.kind(), e.status()), (ErrorKind::RateLimited, Some(429)));
    /// ```
    fn from(e: ::reqwest::Error) -> Self {
        let c = e.classify();
        ApiError::wrapping(c.kind, c.status, Arc::new(e.without_url()))
    }
}

impl ApiError {
    /// Reads an error response into an [`ApiError`] (feature `reqwest`): its status, its
    /// headers (Retry-After and friends, `x-should-retry`) and at most
    /// [`MAX_BODY_BYTES`] of its body. The rest of the body is not
    /// read. If reading the body fails, the part read so far (maybe none) is used.
    ///
    /// Call it on a response whose status is not a success:
    ///
    /// ```
    /// use llm_retry_runtime::{ApiError, ErrorKind};
    ///
    /// async fn call(client: &reqwest::Client) -> Result<String, ApiError> {
    ///     let resp = client.get("https://api.example.com/v1/models").send().await?;
    ///     if !resp.status().is_success() {
    ///         return Err(ApiError::from_reqwest_response(resp).await);
    ///     }
    ///     Ok(resp.text().await?)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let body = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    /// let resp = reqwest::Response::from(http::Response::builder().status(401).body(body).unwrap());
    /// let e = ApiError::from_reqwest_response(resp).await;
    /// assert_eq!(e.kind(), ErrorKind::Auth);
    /// assert_eq!(e.provider_code(), Some("invalid_api_key"));
    /// # }
    /// ```
    pub async fn from_reqwest_response(mut resp: ::reqwest::Response) -> ApiError {
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while body.len() < MAX_BODY_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        ApiError::from_response(status, &headers, &body)
    }
}

/// Sends a request and hands the response's rate-limit headers to the endpoint's
/// [`Limiter`](crate::Limiter) (feature `reqwest`), so that the pacer hears the provider's
/// limits on every response, successes included: the one line of code that
/// [`Limiter::observe`](crate::Limiter::observe) otherwise takes.
///
/// ```no_run
/// use llm_retry_runtime::{ApiError, Limiter, limits::SendObserved};
///
/// static OPENAI: Limiter = Limiter::new("openai");
///
/// async fn chat(http: &reqwest::Client, body: String) -> Result<String, ApiError> {
///     let resp = http
///         .post("https://api.openai.com/v1/chat/completions")
///         .body(body)
///         .send_observed(&OPENAI) // instead of `.send()`
///         .await?;
///     if !resp.status().is_success() {
///         return Err(ApiError::from_reqwest_response(resp).await);
///     }
///     Ok(resp.text().await?)
/// }
/// ```
pub trait SendObserved {
    /// [`send`](::reqwest::RequestBuilder::send), then
    /// [`observe`](crate::Limiter::observe) the response's headers, whatever its status.
    fn send_observed(
        self,
        limiter: &'static crate::Limiter,
    ) -> impl Future<Output = Result<::reqwest::Response, ::reqwest::Error>> + Send;
}

impl SendObserved for ::reqwest::RequestBuilder {
    fn send_observed(
        self,
        limiter: &'static crate::Limiter,
    ) -> impl Future<Output = Result<::reqwest::Response, ::reqwest::Error>> + Send {
        let sent = self.send();
        async move {
            let resp = sent.await?;
            limiter.observe(resp.headers());
            Ok(resp)
        }
    }
}
