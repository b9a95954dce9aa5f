//! [`RedisStore`]: the connection, its timeouts, and the [`Store`] implementation.

use crate::error::{Secrets, from_redis};
use crate::keys::Keys;
use crate::pacer::ReportCall;
use crate::{breaker, pacer};
use core::fmt;
use llm_retry_runtime::store::{Admission, Ask, BreakerAnswer, BreakerOp, Report, Store, StoreError, StoreFuture};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, Script, Value};
use std::sync::Arc;
use std::time::Duration;

/// How many times a reconnection is tried again before the next command tries anew, and the
/// delays between tries: a server that restarts is found again within a fraction of a second,
/// and one that stays down costs one connection attempt per command, not a storm.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(100);

/// A Redis server (or a cluster-compatible one: each call touches one slot) where a fleet's
/// pacers and breakers share their state.
///
/// Every call is one round trip (one `EVALSHA`; the script is loaded again by itself after
/// a `SCRIPT FLUSH` or a restart), bounded by the command timeout (25 ms unless set) and
/// never retried inside: it answers or fails with [`StoreError::Timeout`],
/// [`StoreError::Unavailable`] or [`StoreError::BadReply`], and the runtime paces locally
/// meanwhile. Reconnecting is the connection's own job, in the background.
///
/// Cheap to clone: clones share one multiplexed connection, so one store serves every
/// limiter and breaker of a process. Create it inside the Tokio runtime that uses it: its
/// connection's task lives there.
///
/// Its `Debug` shows the server's host, port and database, never the URL's username or
/// password; no error carries them either.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), llm_retry_runtime::store::StoreError> {
/// use llm_retry_redis::RedisStore;
/// use llm_retry_runtime::store::{Admission, Ask, Store, Tuning};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let ask = Ask { endpoint: "openai", worker: 7, tokens: 0.0, max_wait: None, lease: None, tuning: Tuning::DEFAULT };
/// if let Admission::Go { wait, .. } = store.admit(&ask).await? {
///     tokio::time::sleep(wait).await;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    command_timeout: Duration,
    keys: Keys,
    prefix: String,
    /// `host:port/db`: what `Debug` and the logs show.
    target: String,
    secrets: Secrets,
    pacer: Script,
    breaker: Script,
}

/// Settings for a [`RedisStore`]: see [`RedisStore::builder`].
///
/// ```
/// use std::time::Duration;
/// let b = llm_retry_redis::RedisStore::builder("redis://:secret@127.0.0.1:6379/2")
///     .command_timeout(Duration::from_millis(50))
///     .prefix("my-app");
/// let shown = format!("{b:?}");
/// assert!(shown.contains("127.0.0.1:6379/2") && !shown.contains("secret"));
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    prefix: String,
}

impl RedisStore {
    /// The default command timeout: a round trip on a LAN is well under a millisecond, and
    /// an admission that takes longer than this is better paced locally.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(25);
    /// The default bound on connecting (and on each reconnection attempt).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "llm-retry";

    /// Connects with the defaults: a 25 ms command timeout and the `llm-retry` key prefix.
    /// `url` is a `redis://[user:password@]host[:port][/db]` URL (or `redis+unix://`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URL cannot be read or the server cannot be
    /// reached (or refuses the credentials), [`StoreError::Timeout`] when connecting takes
    /// longer than [`RedisStore::DEFAULT_CONNECT_TIMEOUT`].
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = llm_retry_redis::RedisStore::connect("redis://127.0.0.1:6379/0").await.expect("redis");
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).connect().await
    }

    /// A builder, to set the command timeout, the connect timeout or the key prefix.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// let store = llm_retry_redis::RedisStore::builder("redis://127.0.0.1:6379")
    ///     .command_timeout(Duration::from_millis(10))
    ///     .prefix("staging")
    ///     .connect()
    ///     .await
    ///     .expect("redis");
    /// # }
    /// ```
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            command_timeout: RedisStore::DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: RedisStore::DEFAULT_CONNECT_TIMEOUT,
            prefix: RedisStore::DEFAULT_PREFIX.to_owned(),
        }
    }

    /// The command timeout in force.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = llm_retry_redis::RedisStore::connect("redis://127.0.0.1:6379").await.expect("redis");
    /// assert_eq!(store.command_timeout(), llm_retry_redis::RedisStore::DEFAULT_COMMAND_TIMEOUT);
    /// # }
    /// ```
    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    /// One script call, bounded by the command timeout.
    async fn eval(&self, script: &Script, keys: &[&str], args: &[String]) -> Result<Value, StoreError> {
        let mut call = script.prepare_invoke();
        for key in keys {
            call.key(*key);
        }
        for arg in args {
            call.arg(arg.as_str());
        }
        let mut conn = self.inner.conn.clone();
        self.bounded(async move { call.invoke_async::<Value>(&mut conn).await }).await
    }

    async fn bounded<F>(&self, command: F) -> Result<Value, StoreError>
    where
        F: Future<Output = redis::RedisResult<Value>>,
    {
        let result = match tokio::time::timeout(self.inner.command_timeout, command).await {
            Err(_) => Err(StoreError::Timeout),
            Ok(r) => r.map_err(|e| from_redis(&e, &self.inner.secrets)),
        };
        if let Err(e) = &result {
            tracing::debug!(target: "llm_retry::store", store = "redis", server = %self.inner.target, error = %e, "a store command failed");
        }
        result
    }
}

impl RedisStoreBuilder {
    /// How long one call may take, from sending to the answer (25 ms unless set; at least
    /// 1 ms). Past it the call fails with [`StoreError::Timeout`].
    ///
    /// ```
    /// let b = llm_retry_redis::RedisStore::builder("redis://127.0.0.1").command_timeout(std::time::Duration::from_millis(5));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long connecting may take, at startup and for each reconnection attempt in the
    /// background (250 ms unless set; at least 1 ms).
    ///
    /// ```
    /// let b = llm_retry_redis::RedisStore::builder("redis://127.0.0.1").connect_timeout(std::time::Duration::from_secs(1));
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The prefix of every key (`llm-retry` unless set): stores with different prefixes
    /// share nothing on one server.
    ///
    /// ```
    /// let b = llm_retry_redis::RedisStore::builder("redis://127.0.0.1").prefix("tenant-a");
    /// # let _ = b;
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Connects.
    ///
    /// # Errors
    ///
    /// As [`RedisStore::connect`]: [`StoreError::Unavailable`] when the URL cannot be read
    /// or the server cannot be reached, [`StoreError::Timeout`] past the connect timeout.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = llm_retry_redis::RedisStore::builder("redis://127.0.0.1:6379").connect().await.expect("redis");
    /// # }
    /// ```
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let info = self.url.as_str().into_connection_info().map_err(|e| {
            let secrets = Secrets::new(&self.url, None);
            StoreError::Unavailable(format!("the Redis URL could not be read: {}", secrets.redact(&e.to_string())))
        })?;
        let secrets = Secrets::new(&self.url, Some(&info));
        let target = target(&info);
        let client = redis::Client::open(info).map_err(|e| from_redis(&e, &secrets))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.command_timeout))
            .set_connection_timeout(Some(self.connect_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = match tokio::time::timeout(self.connect_timeout, ConnectionManager::new_with_config(client, config))
            .await
        {
            Err(_) => return Err(StoreError::Timeout),
            Ok(r) => r.map_err(|e| from_redis(&e, &secrets))?,
        };
        tracing::debug!(target: "llm_retry::store", store = "redis", server = %target, "connected");
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                command_timeout: self.command_timeout,
                keys: Keys::new(&self.prefix),
                prefix: self.prefix,
                target,
                secrets,
                pacer: Script::new(pacer::SOURCE),
                breaker: Script::new(breaker::SOURCE),
            }),
        })
    }
}

/// `host:port/db`, or the socket's path: what may be shown of where the server is.
fn target(info: &redis::ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        a @ (ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }) => format!("{a}/{db}"),
        ConnectionAddr::Unix(path) => format!("{}/{db}", path.display()),
        _ => format!("?/{db}"),
    }
}

impl Store for RedisStore {
    fn admit<'a>(&'a self, ask: &'a Ask<'a>) -> StoreFuture<'a, Admission> {
        Box::pin(async move {
            let keys = self.inner.keys.pacer(ask.endpoint);
            let reply = self.eval(&self.inner.pacer, &keys.all(), &pacer::admit_args(ask)).await?;
            pacer::admission(&reply)
        })
    }

    fn report<'a>(&'a self, endpoint: &'a str, report: Report) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let keys = self.inner.keys.pacer(endpoint);
            match pacer::report_call(&report)? {
                ReportCall::Script(args) => {
                    let reply = self.eval(&self.inner.pacer, &keys.all(), &args).await?;
                    pacer::acknowledged(&reply)
                }
                ReportCall::Release(lease) => {
                    let mut conn = self.inner.conn.clone();
                    let zrem = redis::cmd("ZREM").arg(&keys.leases).arg(lease).to_owned();
                    match self.bounded(async move { zrem.query_async::<Value>(&mut conn).await }).await? {
                        // 1 removed, 0 already gone (expired): either way it is released.
                        Value::Int(0 | 1) => Ok(()),
                        _ => Err(crate::reply::bad("ZREM's answer")),
                    }
                }
                ReportCall::Nothing => Ok(()),
            }
        })
    }

    fn breaker<'a>(&'a self, op: BreakerOp<'a>) -> StoreFuture<'a, BreakerAnswer> {
        Box::pin(async move {
            let (name, args) = breaker::args(&op)?;
            let key = self.inner.keys.breaker(name);
            let reply = self.eval(&self.inner.breaker, &[&key], &args).await?;
            breaker::answer(&reply)
        })
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.target)
            .field("prefix", &self.inner.prefix)
            .field("command_timeout", &self.inner.command_timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold credentials: only where it points is shown.
        let server = match self.url.as_str().into_connection_info() {
            Ok(info) => target(&info),
            Err(_) => "(an unreadable URL)".to_owned(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("server", &server)
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
