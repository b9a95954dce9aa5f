//! [`RedisStore`]: the connection, its timeouts, and the [`Store`] implementation.

use crate::connection::{Connection, Servers, Settings};
use crate::error::{Secrets, from_redis};
use crate::keys::Keys;
use crate::pacer::ReportCall;
use crate::{breaker, pacer};
use core::fmt;
use llm_retry_runtime::store::{Admission, Ask, BreakerAnswer, BreakerOp, Report, Store, StoreError, StoreFuture};
use redis::{Cmd, ErrorKind, Script, ServerErrorKind, Value};
use std::sync::Arc;
use std::time::Duration;

/// A Redis server, or a Redis Cluster, where a fleet's pacers and breakers share their state.
///
/// Every call is one round trip (one `EVALSHA`; after a `SCRIPT FLUSH`, a restart or a
/// failover the server lacks the script, and that call runs it with `EVAL` instead, which
/// caches it again), bounded by the command timeout (25 ms unless set) and never retried
/// inside: it answers or fails with [`StoreError::Timeout`], [`StoreError::Unavailable`] or
/// [`StoreError::BadReply`], and the runtime paces locally meanwhile. Reconnecting is the
/// connection's own job, in the background.
///
/// In a cluster ([`RedisStore::builder_cluster`]) every call goes to the one node that serves
/// its endpoint's (or breaker's) hash tag: each endpoint's state lives whole on one node, and
/// endpoints spread over the nodes. A node that is down fails the calls of its own endpoints
/// only.
///
/// Cheap to clone: clones share one multiplexed connection (one per node in a cluster), so
/// one store serves every limiter and breaker of a process. Create it inside the Tokio
/// runtime that uses it: its connection's task lives there.
///
/// Its `Debug` shows the servers' hosts, ports and database, never the URLs' usernames or
/// passwords; no error carries them either.
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
    conn: Connection,
    command_timeout: Duration,
    keys: Keys,
    prefix: String,
    /// `host:port/db` (or the cluster's seeds): what `Debug` and the logs show.
    target: String,
    secrets: Secrets,
    pacer: Lua,
    breaker: Lua,
}

/// A script: its SHA1 for `EVALSHA`, and its source for `EVAL` when a server lacks it.
struct Lua {
    source: &'static str,
    sha: Script,
}

impl Lua {
    fn new(source: &'static str) -> Lua {
        Lua { source, sha: Script::new(source) }
    }

    /// `EVALSHA <sha>` (or `EVAL <source>`) `<numkeys> <keys> <args>`.
    fn call(&self, by_source: bool, keys: &[&str], args: &[String]) -> Cmd {
        let mut cmd = redis::cmd(if by_source { "EVAL" } else { "EVALSHA" });
        cmd.arg(if by_source { self.source } else { self.sha.get_hash() }).arg(keys.len()).arg(keys).arg(args);
        cmd
    }
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
    servers: Servers,
    command_timeout: Duration,
    connect_timeout: Duration,
    prefix: String,
    #[cfg(feature = "tls")]
    root_certificates: Option<Vec<u8>>,
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
    /// `url` is a `redis://[user:password@]host[:port][/db]` URL (or `redis+unix://`, or with
    /// the `tls` feature `rediss://`).
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
        RedisStoreBuilder::new(Servers::One(url.to_owned()))
    }

    /// A builder for a Redis Cluster, from the URLs of some of its nodes (one is enough; more
    /// let the store start while one of them is down): the store learns the slot map from
    /// them, connects to every master, and follows the cluster as its topology changes.
    ///
    /// The URLs share one username and password (the cluster's), and are all `redis://` or
    /// all `rediss://` (the `tls` feature). A managed service's "configuration endpoint" is one
    /// such URL. Each call goes to the node that serves its endpoint's (or breaker's) slot.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = llm_retry_redis::RedisStore::builder_cluster(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
    ///     .prefix("my-app")
    ///     .connect()
    ///     .await
    ///     .expect("redis cluster");
    /// # }
    /// ```
    pub fn builder_cluster<I>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        RedisStoreBuilder::new(Servers::Cluster(nodes.into_iter().map(|n| n.as_ref().to_owned()).collect()))
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

    /// One script call, bounded by the command timeout: `EVALSHA`, or `EVAL` when the server
    /// lacks the script. `EVAL` goes to the same node as `EVALSHA` (by the first key) and caches
    /// the script there; `SCRIPT LOAD` (what `Script::invoke_async` sends) goes to every node of
    /// a cluster, and fails while one of them is down: a node's death would fail calls for
    /// endpoints on the nodes still up. (Redis 7.4 may evict what EVAL cached when clients
    /// EVAL hundreds of other scripts: the next call here sends it again.)
    async fn eval(&self, lua: &Lua, keys: &[&str], args: &[String]) -> Result<Value, StoreError> {
        let conn = &self.inner.conn;
        self.bounded(async move {
            match conn.query(&lua.call(false, keys, args)).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    conn.query(&lua.call(true, keys, args)).await
                }
                other => other,
            }
        })
        .await
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
    fn new(servers: Servers) -> RedisStoreBuilder {
        RedisStoreBuilder {
            servers,
            command_timeout: RedisStore::DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: RedisStore::DEFAULT_CONNECT_TIMEOUT,
            prefix: RedisStore::DEFAULT_PREFIX.to_owned(),
            #[cfg(feature = "tls")]
            root_certificates: None,
        }
    }

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

    /// Trusts these CA certificates (PEM, one or more) instead of the system's, for a server
    /// or cluster whose certificate a private CA signed. The URLs must be `rediss://`. Needs
    /// the `tls` feature.
    ///
    /// Without it, `rediss://` trusts the system's root certificates (or, with the
    /// `tls-webpki-roots` feature, Mozilla's, compiled in), which is what managed services'
    /// certificates chain to. The server's name (or IP address) must match its certificate;
    /// `rediss://...#insecure` is refused.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let ca = std::fs::read("/etc/redis/ca.crt").expect("the CA");
    /// let store = llm_retry_redis::RedisStore::builder("rediss://:password@redis.internal:6380")
    ///     .tls_root_certificates(ca)
    ///     .connect()
    ///     .await
    ///     .expect("redis over TLS");
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem.into());
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
        #[cfg(feature = "tls")]
        let root_certificates = self.root_certificates.as_deref();
        #[cfg(not(feature = "tls"))]
        let root_certificates = None;
        let settings = Settings {
            command_timeout: self.command_timeout,
            connect_timeout: self.connect_timeout,
            root_certificates,
        };
        let connected = self.servers.connect(&settings).await?;
        tracing::debug!(target: "llm_retry::store", store = "redis", server = %connected.target, "connected");
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn: connected.conn,
                command_timeout: self.command_timeout,
                keys: Keys::new(&self.prefix),
                prefix: self.prefix,
                target: connected.target,
                secrets: connected.secrets,
                pacer: Lua::new(pacer::SOURCE),
                breaker: Lua::new(breaker::SOURCE),
            }),
        })
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
                    let zrem = redis::cmd("ZREM").arg(&keys.leases).arg(lease).to_owned();
                    match self.bounded(self.inner.conn.query(&zrem)).await? {
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
        // The URLs may hold credentials: only where they point is shown.
        let mut shown = f.debug_struct("RedisStoreBuilder");
        shown
            .field("server", &self.servers.describe())
            .field("prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        shown.field("tls_root_certificates", &self.root_certificates.as_ref().map(|_| "(set)"));
        shown.finish()
    }
}
