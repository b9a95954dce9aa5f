//! Configuring and starting a server: [`ChaosServerBuilder`] and the defaults it starts from.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::connection::accept_loop;
use super::limits::Limiters;
use super::{ChaosServer, Config, Shared, State};
use crate::responses::Chunking;
use crate::{Chaos, Fault, RateHeaders, TokenBucket, TokensPerMinute};

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
    rate_limit_tokens: Option<(u32, u32)>,
    rate_headers: RateHeaders,
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
            rate_limit_tokens: None,
            rate_headers: RateHeaders::None,
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
    /// when the server starts. With [`rate_headers`](Self::rate_headers), every response it admits or
    /// refuses carries the providers' rate-limit headers instead; with
    /// [`rate_limit_tokens`](Self::rate_limit_tokens), tokens are limited too.
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

    /// Puts a tokens-per-minute bucket ([`TokensPerMinute`]) in front of every valid request, beside
    /// the request bucket of [`rate_limit`](Self::rate_limit) if any: a request is admitted only when
    /// both have room, and then takes from both. Its tokens are [`estimate_tokens`](crate::estimate_tokens)
    /// of its body: `ceil(chars / 4)` of the prompt's text plus `max_tokens` (or its equivalent), as
    /// OpenAI counts the output allowance against TPM. The bucket starts full with `burst_tokens`
    /// (use `tokens_per_minute` for the providers' behaviour: a minute's budget at once).
    ///
    /// A request refused for tokens gets a `429` whose `retry-after` and `retry-after-ms` say when
    /// enough tokens are back (OpenAI's body: "Rate limit reached for ... on tokens per min (TPM):
    /// Limit, Used, Requested"; Anthropic's `rate_limit_error`). A request needing more than
    /// `burst_tokens` can never be admitted: it gets a `429` without `retry-after`, with OpenAI's
    /// "Request too large for ... on tokens per min (TPM)" (or Anthropic's words to the same effect).
    /// Refusals take no script step, no chaos draw, and nothing from either bucket.
    ///
    /// # Panics
    /// [`start`](Self::start) panics if either number is zero.
    ///
    /// ```
    /// use llm_retry_testkit::{ChaosServer, RateHeaders};
    /// let builder = ChaosServer::builder()
    ///     .rate_limit(500, 500)
    ///     .rate_limit_tokens(30_000, 30_000)
    ///     .rate_headers(RateHeaders::Auto);
    /// # let _ = builder;
    /// ```
    pub fn rate_limit_tokens(mut self, tokens_per_minute: u32, burst_tokens: u32) -> Self {
        self.rate_limit_tokens = Some((tokens_per_minute, burst_tokens));
        self
    }

    /// Which providers' rate-limit headers the limiters send (default [`RateHeaders::None`]): with
    /// [`RateHeaders::OpenAi`], [`RateHeaders::Anthropic`] or [`RateHeaders::Auto`], every response to a
    /// request the limiters admit or refuse carries the limit, what remains and when the bucket is full
    /// again, as the limiters stand at that moment: successes (JSON and the head of an SSE stream),
    /// scripted faults and `429`s alike. Responses a fault writes on the raw socket (resets) carry none.
    ///
    /// ```
    /// use llm_retry_testkit::{ChaosServer, RateHeaders};
    /// let builder = ChaosServer::builder().rate_limit(600, 10).rate_headers(RateHeaders::OpenAi);
    /// # let _ = builder;
    /// ```
    pub fn rate_headers(mut self, style: RateHeaders) -> Self {
        self.rate_headers = style;
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
    /// runtime, or if a rate limit has a zero.
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
            limits: Limiters {
                requests: self.rate_limit.map(|(rpm, burst)| TokenBucket::new(rpm, burst)),
                tokens: self.rate_limit_tokens.map(|(tpm, burst)| TokensPerMinute::new(tpm, burst)),
            },
            records: Vec::new(),
        };
        let shared = Arc::new(Shared {
            config: Config {
                reply: self.reply,
                chunking: self.chunking,
                chunk_delay: self.chunk_delay,
                max_body_bytes: self.max_body_bytes,
                rate_headers: self.rate_headers,
            },
            state: Mutex::new(state),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        Ok(ChaosServer { addr, shared, stop: Some(stop_tx), task: Some(task) })
    }
}
