//! A chaos LLM server on loopback, for testing retry configurations the way you test HTTP clients with
//! a mock server.
//!
//! [`ChaosServer`] speaks enough of OpenAI's `POST /v1/chat/completions` and Anthropic's
//! `POST /v1/messages` (JSON and SSE streaming) for real clients, on `127.0.0.1` only, and answers in
//! Google Gemini's, AWS Bedrock's and Azure OpenAI's shapes on their paths (see [`Route`]). It fails on
//! purpose, the way real providers do: rate limits with every flavour of `retry-after`, quota and auth
//! errors, 5xx and 529 overloads, `x-should-retry`, connection resets before and during the body, hanging
//! responses, slow first bytes, cut streams and `event: error` after a `200` (see [`Fault`]). Drive it
//! with a script ([`ChaosServer::script`]), with seeded random [`Chaos`], or put a [`TokenBucket`] rate
//! limiter in front ([`ChaosServerBuilder::rate_limit`], and for tokens per minute
//! [`ChaosServerBuilder::rate_limit_tokens`]) that speaks OpenAI's or Anthropic's rate-limit headers
//! ([`RateHeaders`]). It records every request
//! ([`ChaosServer::requests`]), never the credentials.
//! [`redis_server::RedisServer`] runs a real `redis-server` (killed, paused and restarted on demand) for
//! the tests and examples of the Redis store.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use llm_retry_testkit::{ChaosServer, Fault, RetryAfterHeader};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let server = ChaosServer::start().await;
//! server.script([Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(2.0) }, Fault::Status(500)]);
//!
//! // Any HTTP client works; here, raw HTTP/1.1 over TCP.
//! async fn post(addr: std::net::SocketAddr) -> String {
//!     let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#;
//!     let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
//!     let request = format!(
//!         "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
//!          content-length: {}\r\nconnection: close\r\n\r\n{body}",
//!         body.len()
//!     );
//!     tcp.write_all(request.as_bytes()).await.unwrap();
//!     let mut response = String::new();
//!     tcp.read_to_string(&mut response).await.unwrap();
//!     response
//! }
//!
//! assert!(post(server.addr()).await.starts_with("HTTP/1.1 429"));
//! assert!(post(server.addr()).await.starts_with("HTTP/1.1 500"));
//! let ok = post(server.addr()).await; // the script ran out: 200
//! assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("chat.completion"));
//! assert_eq!(server.request_count(), 3);
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod chaos;
mod fault;
mod limiter;
mod persona;
mod rate_headers;
mod record;
pub mod redis_cluster;
pub mod redis_server;
mod refused;
mod responses;
mod server;
mod token_count;
mod token_limiter;

pub use chaos::Chaos;
pub use fault::{Fault, RetryAfterHeader, format_openai_duration};
pub use limiter::TokenBucket;
pub use rate_headers::{RateHeaders, format_rfc3339};
pub use record::{ATTEMPT_HEADERS, Outcome, RecordedRequest, Route, SECRET_HEADERS};
pub use refused::RefusedPort;
pub use server::{ChaosServer, ChaosServerBuilder, DEFAULT_CHUNKS, DEFAULT_MAX_BODY_BYTES};
pub use token_count::estimate_tokens;
pub use token_limiter::{TokenRefusal, TokensPerMinute};
