//! The server: [`ChaosServer`] and its [`ChaosServerBuilder`].
//!
//! This file holds the running server, its settings and the state its connections share.
//! The rest, one concern per file:
//! - `builder`: [`ChaosServerBuilder`] and its defaults, and starting the server.
//! - `connection`: the accept loop, and one connection served by hyper unless a fault takes
//!   the socket over (a reset, a hang).
//! - `decide`: one request checked, recorded, and its answer chosen (the rate limiter, the
//!   scripts, the chaos).
//! - `limits`: the request and token buckets in front of valid requests, the state their
//!   rate-limit headers report, and a refusal's `429`.
//! - `answer`: the response a [`Fault`] calls for.
//! - `wire`: JSON and SSE responses, and the raw bytes written before a reset.

mod answer;
mod builder;
mod connection;
mod decide;
mod limits;
mod wire;

pub use builder::{ChaosServerBuilder, DEFAULT_CHUNKS, DEFAULT_MAX_BODY_BYTES};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::record::{RecordedRequest, Route};
use crate::responses::Chunking;
use crate::{Chaos, Fault, RateHeaders};
use limits::Limiters;

/// Settings fixed at start.
#[derive(Debug)]
struct Config {
    reply: Option<String>,
    chunking: Chunking,
    chunk_delay: Duration,
    max_body_bytes: usize,
    rate_headers: RateHeaders,
}

/// What changes while the server runs.
#[derive(Debug, Default)]
struct State {
    global: VecDeque<Fault>,
    routes: HashMap<Route, VecDeque<Fault>>,
    chaos: Option<Chaos>,
    limits: Limiters,
    records: Vec<RecordedRequest>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    state: Mutex<State>,
}

impl Shared {
    /// The state; a panic elsewhere while holding the lock does not make the server panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An OpenAI- and Anthropic-compatible HTTP/1.1 server on `127.0.0.1` that fails on purpose.
///
/// Each valid request takes its answer from, in order: the rate limiter (if any), the script for its
/// route, the global script, the [`Chaos`] (if any), and otherwise a normal `200`. Every request is
/// recorded. Dropping the server aborts its accept loop and every connection; [`shutdown`](Self::shutdown)
/// does the same and waits until all of them are gone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use llm_retry_testkit::{ChaosServer, Fault, RetryAfterHeader};
///
/// let server = ChaosServer::start().await;
/// server.script([
///     Fault::RateLimited { retry_after: RetryAfterHeader::Seconds(1.0) },
///     Fault::Status(500),
///     Fault::ResetBeforeResponse,
///     Fault::Ok,
/// ]);
/// assert_eq!(server.openai_base(), format!("{}/v1", server.url()));
/// // ... point your client at server.openai_base() and run it ...
/// assert_eq!(server.request_count(), 0);
/// server.shutdown().await;
/// # }
/// ```
pub struct ChaosServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for ChaosServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl ChaosServer {
    /// Starts a server with default settings: every request answered `200` until told otherwise.
    ///
    /// # Panics
    /// If `127.0.0.1:0` cannot be bound or not called within a tokio runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert!(server.addr().ip().is_loopback());
    /// # }
    /// ```
    pub async fn start() -> ChaosServer {
        ChaosServerBuilder::default().start().await
    }

    /// A builder for a server with a reply text, chunking, rate limit, chaos or an initial script.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::builder().reply("Hi").start().await;
    /// # drop(server); }
    /// ```
    pub fn builder() -> ChaosServerBuilder {
        ChaosServerBuilder::default()
    }

    /// The bound address, `127.0.0.1:PORT`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert_ne!(server.addr().port(), 0);
    /// # }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the base URL for Anthropic clients (they append `/v1/messages`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert_eq!(server.url(), format!("http://{}", server.addr()));
    /// # }
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL for OpenAI clients (they append `/chat/completions`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert!(server.openai_base().ends_with("/v1"));
    /// # }
    /// ```
    pub fn openai_base(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// `http://127.0.0.1:PORT/v1/chat/completions`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert!(server.chat_completions_url().ends_with("/v1/chat/completions"));
    /// # }
    /// ```
    pub fn chat_completions_url(&self) -> String {
        format!("{}/v1/chat/completions", self.url())
    }

    /// `http://127.0.0.1:PORT/v1/messages`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert!(server.messages_url().ends_with("/v1/messages"));
    /// # }
    /// ```
    pub fn messages_url(&self) -> String {
        format!("{}/v1/messages", self.url())
    }

    /// Replaces the global script: each following valid request (on any route without a script of its
    /// own) takes the next fault; once the script runs out, requests fall back to the chaos if any, else
    /// to [`Fault::Ok`]. Requests refused by the rate limiter or rejected as invalid take no step.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::{ChaosServer, Fault};
    /// let server = ChaosServer::start().await;
    /// server.script([Fault::rate_limited(2.0), Fault::Status(500), Fault::ResetBeforeResponse, Fault::Ok]);
    /// assert_eq!(server.script_len(), 4);
    /// # }
    /// ```
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().global = faults.into_iter().collect();
    }

    /// Replaces the script of one route; it is used before the global script for requests to that route.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::{ChaosServer, Fault, Route};
    /// let server = ChaosServer::start().await;
    /// server.script_route(Route::Messages, [Fault::Status(529), Fault::Status(529)]);
    /// assert_eq!(server.script_route_len(Route::Messages), 2);
    /// # }
    /// ```
    pub fn script_route(&self, route: Route, faults: impl IntoIterator<Item = Fault>) {
        self.shared.lock().routes.insert(route, faults.into_iter().collect());
    }

    /// How many steps of the global script are left.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert_eq!(server.script_len(), 0);
    /// # }
    /// ```
    pub fn script_len(&self) -> usize {
        self.shared.lock().global.len()
    }

    /// How many steps of a route's script are left.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::{ChaosServer, Route};
    /// let server = ChaosServer::start().await;
    /// assert_eq!(server.script_route_len(Route::ChatCompletions), 0);
    /// # }
    /// ```
    pub fn script_route_len(&self, route: Route) -> usize {
        self.shared.lock().routes.get(&route).map_or(0, VecDeque::len)
    }

    /// Replaces (or with `None`, removes) the random chaos.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use llm_retry_testkit::{Chaos, ChaosServer, Fault};
    /// let server = ChaosServer::start().await;
    /// server.set_chaos(Some(Chaos::seeded(3).with(Fault::Status(502), 0.5)));
    /// server.set_chaos(None);
    /// # }
    /// ```
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.shared.lock().chaos = chaos;
    }

    /// Every request received so far, in the order their answers were decided. Bytes that never parse
    /// as an HTTP request head (hyper answers those `400` itself) are not requests and are not recorded.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert!(server.requests().is_empty());
    /// # }
    /// ```
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().records.clone()
    }

    /// How many requests were received so far (valid or not, rate-limited or not).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// assert_eq!(server.request_count(), 0);
    /// # }
    /// ```
    pub fn request_count(&self) -> usize {
        self.shared.lock().records.len()
    }

    /// Forgets the recorded requests (sequence numbers keep counting from 0 again).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// server.clear_requests();
    /// assert_eq!(server.request_count(), 0);
    /// # }
    /// ```
    pub fn clear_requests(&self) {
        self.shared.lock().records.clear();
    }

    /// Stops accepting, closes every connection (hanging ones included) and waits until the accept loop
    /// and all connection tasks are gone. The port is closed when this returns.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::start().await;
    /// let addr = server.addr();
    /// server.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # }
    /// ```
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // The loop exits on the signal; a panic or cancellation there leaves nothing to wait for.
            let _ = task.await;
        }
    }
}

impl Drop for ChaosServer {
    /// Aborts the accept loop; dropping it aborts every connection task and closes the port. This takes
    /// effect the next time the runtime runs (use [`ChaosServer::shutdown`] to wait for it).
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
