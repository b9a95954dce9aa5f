//! The server: [`ChaosServer`] and its [`ChaosServerBuilder`].

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::fault::valid_status;
use crate::record::{self, Outcome, RecordedRequest, Route};
use crate::responses::{self as r, Api, Chunking, Reply};
use crate::{Chaos, Fault, TokenBucket, format_openai_duration};

/// The largest request body accepted by default (1 MiB); larger ones get a `413`.
///
/// ```
/// assert_eq!(llm_retry_testkit::DEFAULT_MAX_BODY_BYTES, 1024 * 1024);
/// ```
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How many content chunks a streamed reply is split into by default.
///
/// ```
/// assert_eq!(llm_retry_testkit::DEFAULT_CHUNKS, 4);
/// ```
pub const DEFAULT_CHUNKS: usize = 4;

/// Settings fixed at start.
#[derive(Debug)]
struct Config {
    reply: Option<String>,
    chunking: Chunking,
    chunk_delay: Duration,
    max_body_bytes: usize,
}

/// What changes while the server runs.
#[derive(Debug, Default)]
struct State {
    global: VecDeque<Fault>,
    routes: HashMap<Route, VecDeque<Fault>>,
    chaos: Option<Chaos>,
    limiter: Option<TokenBucket>,
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

/// Configures a [`ChaosServer`] before it starts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use llm_retry_testkit::{Chaos, ChaosServer, Fault};
///
/// let server = ChaosServer::builder()
///     .reply("Hello there")
///     .chunks(5)
///     .chunk_delay(Duration::from_millis(1))
///     .rate_limit(600, 10)
///     .chaos(Chaos::seeded(1).with(Fault::Status(500), 0.1))
///     .script([Fault::rate_limited(1.0)])
///     .start()
///     .await;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ChaosServerBuilder {
    reply: Option<String>,
    chunking: Chunking,
    chunk_delay: Duration,
    max_body_bytes: usize,
    rate_limit: Option<(u32, u32)>,
    chaos: Option<Chaos>,
    script: Vec<Fault>,
}

impl Default for ChaosServerBuilder {
    fn default() -> Self {
        ChaosServerBuilder {
            reply: None,
            chunking: Chunking::Count(DEFAULT_CHUNKS),
            chunk_delay: Duration::ZERO,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_limit: None,
            chaos: None,
            script: Vec::new(),
        }
    }
}

impl ChaosServerBuilder {
    /// The assistant text of every successful reply. By default it is derived from the prompt:
    /// `This is a deterministic reply from llm-retry-testkit to: <last user message, up to 200 chars>`.
    /// A request that ends with an assistant message (a prefill) is continued: when the reply starts
    /// with the prefill, only the rest is sent, so a client can resume a cut stream.
    ///
    /// ```
    /// let builder = llm_retry_testkit::ChaosServer::builder().reply("Hello");
    /// # let _ = builder;
    /// ```
    pub fn reply(mut self, text: impl Into<String>) -> Self {
        self.reply = Some(text.into());
        self
    }

    /// How many content chunks a streamed reply is split into (at least 1; default [`DEFAULT_CHUNKS`]).
    /// The text is cut into that many pieces of nearly equal length in characters, possibly empty.
    ///
    /// ```
    /// let builder = llm_retry_testkit::ChaosServer::builder().chunks(8);
    /// # let _ = builder;
    /// ```
    pub fn chunks(mut self, chunks: usize) -> Self {
        self.chunking = Chunking::Count(chunks.max(1));
        self
    }

    /// Instead of a chunk count: cut a streamed reply into content chunks of `chars` characters each
    /// (at least 1), the last one possibly shorter. Replaces [`chunks`](Self::chunks); the last call wins.
    ///
    /// ```
    /// let builder = llm_retry_testkit::ChaosServer::builder().chunk_chars(3);
    /// # let _ = builder;
    /// ```
    pub fn chunk_chars(mut self, chars: usize) -> Self {
        self.chunking = Chunking::Chars(chars.max(1));
        self
    }

    /// A pause between two SSE events of a streamed reply (default none).
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = llm_retry_testkit::ChaosServer::builder().chunk_delay(Duration::from_millis(5));
    /// # let _ = builder;
    /// ```
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// The largest accepted request body (default [`DEFAULT_MAX_BODY_BYTES`]); larger ones get a `413`.
    ///
    /// ```
    /// let builder = llm_retry_testkit::ChaosServer::builder().max_body_bytes(4096);
    /// # let _ = builder;
    /// ```
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Puts a [`TokenBucket`] of `requests_per_minute` and `burst` in front of every valid request.
    /// A refused request gets a `429` in the route's shape with `retry-after` (whole seconds, rounded up),
    /// `retry-after-ms` (rounded up), `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests: 0` and
    /// `x-ratelimit-reset-requests`; it takes no script step and no chaos draw. The bucket starts full
    /// when the server starts.
    ///
    /// # Panics
    /// [`start`](Self::start) panics if either number is zero.
    ///
    /// ```
    /// let builder = llm_retry_testkit::ChaosServer::builder().rate_limit(60, 5);
    /// # let _ = builder;
    /// ```
    pub fn rate_limit(mut self, requests_per_minute: u32, burst: u32) -> Self {
        self.rate_limit = Some((requests_per_minute, burst));
        self
    }

    /// Random faults for requests that no script step covers.
    ///
    /// ```
    /// use llm_retry_testkit::{Chaos, ChaosServer, Fault};
    /// let builder = ChaosServer::builder().chaos(Chaos::seeded(42).with(Fault::Status(503), 0.2));
    /// # let _ = builder;
    /// ```
    pub fn chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = Some(chaos);
        self
    }

    /// The initial global script (see [`ChaosServer::script`]).
    ///
    /// ```
    /// use llm_retry_testkit::{ChaosServer, Fault};
    /// let builder = ChaosServer::builder().script([Fault::Status(500), Fault::Ok]);
    /// # let _ = builder;
    /// ```
    pub fn script(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.script = faults.into_iter().collect();
        self
    }

    /// Binds `127.0.0.1:0` and starts serving on the current tokio runtime.
    ///
    /// # Panics
    /// If the port cannot be bound (see [`try_start`](Self::try_start)), if not called within a tokio
    /// runtime, or if the rate limit has a zero.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::builder().start().await;
    /// # drop(server); }
    /// ```
    pub async fn start(self) -> ChaosServer {
        match self.try_start().await {
            Ok(server) => server,
            Err(e) => panic!("llm-retry-testkit: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Like [`start`](Self::start), but returns the bind error.
    ///
    /// # Errors
    /// If `127.0.0.1:0` cannot be bound.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = llm_retry_testkit::ChaosServer::builder().try_start().await.unwrap();
    /// # drop(server); }
    /// ```
    pub async fn try_start(self) -> io::Result<ChaosServer> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let state = State {
            global: self.script.into(),
            routes: HashMap::new(),
            chaos: self.chaos,
            limiter: self.rate_limit.map(|(rpm, burst)| TokenBucket::new(rpm, burst)),
            records: Vec::new(),
        };
        let shared = Arc::new(Shared {
            config: Config {
                reply: self.reply,
                chunking: self.chunking,
                chunk_delay: self.chunk_delay,
                max_body_bytes: self.max_body_bytes,
            },
            state: Mutex::new(state),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        Ok(ChaosServer { addr, shared, stop: Some(stop_tx), task: Some(task) })
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

/// Accepts connections until told to stop (or dropped), then aborts and awaits every connection task.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors or the like: do not spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// What the connection task does instead of letting hyper answer.
#[derive(Debug)]
enum Takeover {
    /// Write these raw bytes (possibly none), then reset the connection.
    Reset(Bytes),
    /// Say nothing; keep the connection until the client closes it.
    Hang,
}

/// Serves one connection with hyper, unless a fault takes the socket over.
///
/// The socket's file descriptor is duplicated first: hyper owns one copy, this task keeps the other. A
/// takeover drops hyper's side (which sends nothing, since the socket stays open through the duplicate)
/// and then acts on the raw socket.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let Ok(std_stream) = stream.into_std() else { return };
    let Ok(raw) = std_stream.try_clone() else { return };
    let Ok(stream) = TcpStream::from_std(std_stream) else { return };

    let (takeover_tx, mut takeover_rx) = mpsc::channel::<Takeover>(1);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        let takeover = takeover_tx.clone();
        async move { Ok::<_, Infallible>(handle(req, &shared, &takeover).await) }
    });
    let mut connection = Box::pin(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
    let takeover = tokio::select! {
        _ = connection.as_mut() => None,
        takeover = takeover_rx.recv() => takeover,
    };
    drop(connection);
    let Some(takeover) = takeover else { return };
    let Ok(mut raw) = TcpStream::from_std(raw) else { return };
    match takeover {
        Takeover::Reset(prefix) => {
            if !prefix.is_empty() {
                if raw.write_all(&prefix).await.is_err() {
                    return;
                }
                let _ = raw.flush().await;
            }
            // Zero linger: closing sends RST instead of FIN.
            let _ = raw.set_zero_linger();
        }
        Takeover::Hang => {
            let mut sink = [0u8; 4096];
            while let Ok(n) = raw.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// What the state decided for a request.
enum Decision {
    Reject(u16, Value),
    Limit { wait: Duration, requests_per_minute: u32 },
    Serve(Fault, Value),
}

async fn handle(req: Request<Incoming>, shared: &Shared, takeover: &mpsc::Sender<Takeover>) -> Response<ResponseBody> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let route = Route::from_path(&path);
    let api = Api::for_route(route);
    let max = shared.config.max_body_bytes;

    let mut raw = Bytes::new();
    let mut json = None;
    let checked: Result<(), (u16, Value)> = if route == Route::Unknown {
        Err((404, r::status_error(api, 404)))
    } else if parts.method != Method::POST {
        Err((405, r::method_not_allowed(api)))
    } else if content_length(&parts.headers).is_some_and(|n| n > max as u64) {
        Err((413, r::too_large(api, max)))
    } else {
        match Limited::new(body, max).collect().await {
            Ok(collected) => {
                raw = collected.to_bytes();
                match serde_json::from_slice::<Value>(&raw) {
                    Ok(value) if value.is_object() => {
                        let has_messages = value.get("messages").is_some_and(Value::is_array);
                        json = Some(value);
                        if has_messages {
                            Ok(())
                        } else {
                            Err((
                                400,
                                r::invalid_request(api, "Missing required parameter: 'messages'.", Some("messages")),
                            ))
                        }
                    }
                    Ok(_) => Err((400, r::invalid_request(api, "The request body must be a JSON object.", None))),
                    Err(e) => Err((
                        400,
                        r::invalid_request(
                            api,
                            &format!("We could not parse the JSON body of your request: {e}"),
                            None,
                        ),
                    )),
                }
            }
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err((413, r::too_large(api, max))),
            Err(_) => Err((400, r::invalid_request(api, "The request body could not be read.", None))),
        }
    };
    let stream = json.as_ref().and_then(|v| v.get("stream")).and_then(Value::as_bool).unwrap_or(false);

    let (seq, decision) = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let seq = state.records.len();
        let decision = match checked {
            Err((status, body)) => Decision::Reject(status, body),
            Ok(()) => match state.limiter.as_mut().map(|l| (l.requests_per_minute(), l.try_acquire_at(at))) {
                Some((requests_per_minute, Err(wait))) => Decision::Limit { wait, requests_per_minute },
                _ => {
                    let fault = state
                        .routes
                        .get_mut(&route)
                        .and_then(VecDeque::pop_front)
                        .or_else(|| state.global.pop_front())
                        .or_else(|| state.chaos.as_mut().map(Chaos::next_fault))
                        .unwrap_or(Fault::Ok);
                    Decision::Serve(fault, json.clone().unwrap_or(Value::Null))
                }
            },
        };
        let outcome = match &decision {
            Decision::Reject(status, _) => Outcome::Rejected { status: *status },
            Decision::Limit { wait, .. } => Outcome::RateLimited { retry_after: *wait },
            Decision::Serve(fault, _) => Outcome::Served(fault.clone()),
        };
        let (headers, had_authorization) = record::sanitize(&parts.headers);
        state.records.push(RecordedRequest {
            seq,
            at,
            method: parts.method.clone(),
            path,
            route,
            attempt: record::attempt(&parts.headers),
            headers,
            had_authorization,
            body: raw,
            json,
            stream,
            outcome,
        });
        (seq, decision)
    };

    match decision {
        Decision::Reject(status, body) => json_response(status, &body),
        Decision::Limit { wait, requests_per_minute } => {
            let mut resp = json_response(429, &r::rate_limited(api));
            let secs = wait.as_nanos().div_ceil(1_000_000_000);
            let millis = wait.as_nanos().div_ceil(1_000_000);
            let h = resp.headers_mut();
            insert(h, "retry-after", &secs.to_string());
            insert(h, "retry-after-ms", &millis.to_string());
            insert(h, "x-ratelimit-limit-requests", &requests_per_minute.to_string());
            insert(h, "x-ratelimit-remaining-requests", "0");
            insert(h, "x-ratelimit-reset-requests", &format_openai_duration(wait));
            resp
        }
        Decision::Serve(fault, body) => {
            let reply = Reply::new(api, seq, &body, shared.config.reply.as_deref());
            serve(&fault, &reply, stream, &shared.config, takeover).await
        }
    }
}

async fn serve(
    fault: &Fault,
    reply: &Reply,
    stream: bool,
    config: &Config,
    takeover: &mpsc::Sender<Takeover>,
) -> Response<ResponseBody> {
    let api = reply.api;
    let mut should_retry = None;
    let mut delay = Duration::ZERO;
    let mut fault = fault;
    loop {
        match fault {
            Fault::ShouldRetry { should_retry: value, fault: inner } => {
                should_retry.get_or_insert(*value);
                fault = inner;
            }
            Fault::Delayed { delay: d, fault: inner } => {
                delay = delay.saturating_add(*d);
                fault = inner;
            }
            _ => break,
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = match fault {
        Fault::Ok if stream => sse_response(reply.events(config.chunking).all(), config.chunk_delay),
        Fault::Ok => json_bytes_response(200, reply.json()),
        Fault::RateLimited { retry_after } => {
            let mut resp = json_response(429, &r::rate_limited(api));
            for (name, value) in retry_after.header_pairs() {
                insert(resp.headers_mut(), name, &value);
            }
            resp
        }
        Fault::InsufficientQuota => json_response(429, &r::insufficient_quota(api)),
        Fault::InvalidApiKey => json_response(401, &r::invalid_api_key(api)),
        Fault::ContextLengthExceeded => json_response(400, &r::context_length_exceeded(api)),
        Fault::Status(code) => {
            let code = valid_status(*code);
            json_response(code, &r::status_error(api, code))
        }
        Fault::Custom { status, headers, body } => {
            let mut resp = json_bytes_response(valid_status(*status), Bytes::from(body.clone()));
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name.as_str()), HeaderValue::try_from(value.as_str()))
                {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        }
        Fault::StreamError { after_chunks } => {
            let mut events = reply.events(config.chunking).cut(*after_chunks);
            events.push(reply.error_event());
            sse_response(events, config.chunk_delay)
        }
        Fault::ResetBeforeResponse => return take_over(takeover, Takeover::Reset(Bytes::new())).await,
        Fault::ResetDuringBody if stream => {
            let events = reply.events(config.chunking);
            let half = events.content.len() / 2;
            return take_over(takeover, Takeover::Reset(raw_sse(events.cut(half)))).await;
        }
        Fault::ResetDuringBody => return take_over(takeover, Takeover::Reset(raw_partial_json(&reply.json()))).await,
        Fault::StreamCut { after_chunks } if stream => {
            let events = reply.events(config.chunking).cut(*after_chunks);
            return take_over(takeover, Takeover::Reset(raw_sse(events))).await;
        }
        Fault::StreamCut { .. } => return take_over(takeover, Takeover::Reset(raw_partial_json(&reply.json()))).await,
        Fault::Hang => return take_over(takeover, Takeover::Hang).await,
        Fault::ShouldRetry { .. } | Fault::Delayed { .. } => unreachable!("wrappers are unwrapped above"),
    };
    if let Some(value) = should_retry {
        insert(resp.headers_mut(), "x-should-retry", if value { "true" } else { "false" });
    }
    resp
}

/// Hands the socket to the connection task, which drops this future with hyper's connection.
async fn take_over(takeover: &mpsc::Sender<Takeover>, what: Takeover) -> Response<ResponseBody> {
    if takeover.send(what).await.is_err() {
        // The connection task is gone, so nobody will read this.
        return json_response(500, &r::status_error(Api::OpenAi, 500));
    }
    std::future::pending().await
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn json_response(status: u16, body: &Value) -> Response<ResponseBody> {
    json_bytes_response(status, Bytes::from(body.to_string()))
}

fn json_bytes_response(status: u16, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn sse_response(events: Vec<Bytes>, delay: Duration) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::streamed(events, delay));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The head of a `200` JSON response announcing the full length, and the first half of the body.
fn raw_partial_json(body: &Bytes) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())
            .as_bytes(),
    );
    out.put_slice(&body[..body.len() / 2]);
    out.freeze()
}

/// The head of a chunked `200` SSE response, and these events as chunks (never the terminating chunk).
fn raw_sse(events: Vec<Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_slice(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\n\
          transfer-encoding: chunked\r\n\r\n",
    );
    for event in events {
        out.put_slice(format!("{:x}\r\n", event.len()).as_bytes());
        out.put_slice(&event);
        out.put_slice(b"\r\n");
    }
    out.freeze()
}
