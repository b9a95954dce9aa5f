//! The connection behind a [`RedisStore`](crate::RedisStore): one server through a
//! `ConnectionManager`, or a Redis Cluster through the cluster client; TLS when the URLs say
//! `rediss://` (with the `tls` feature).

use crate::error::{Secrets, from_redis};
use llm_retry_runtime::store::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult, Value};
use std::time::Duration;

/// How many times a reconnection is tried again before the next command tries anew, and the
/// delays between tries: a server that restarts is found again within a fraction of a second,
/// and one that stays down costs one connection attempt per command, not a storm.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(100);

/// How often the cluster client sends a command again by itself: never. A MOVED or ASK (the
/// command did not run) fails this call and refreshes the slot map for the next; a dropped
/// connection fails it too, where sending it again could run a script twice (a second
/// reservation, a failure counted twice). The runtime paces locally for a failed call, so one
/// failed call is cheaper than a doubt.
const CLUSTER_RETRIES: u32 = 0;

/// Where the store's state lives, as the builder was told.
#[derive(Clone)]
pub(crate) enum Servers {
    /// One server's URL.
    One(String),
    /// A Redis Cluster's seed nodes' URLs: any of them finds the rest.
    Cluster(Vec<String>),
}

/// What connecting needs besides the URLs.
pub(crate) struct Settings<'a> {
    pub(crate) command_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// CA certificates (PEM) to trust instead of the system's, with the `tls` feature.
    pub(crate) root_certificates: Option<&'a [u8]>,
}

/// A live connection to one server or to a cluster. Cheap to clone: both are handles to one
/// multiplexed connection (or one cluster task) that reconnects in the background.
#[derive(Clone)]
pub(crate) enum Connection {
    One(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// One command. A cluster routes it to the node of its first key's slot (for `EVAL` and
    /// `EVALSHA`, the first of the script's keys).
    pub(crate) async fn query(&self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Connection::One(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
    }
}

/// A connection, where it points (for `Debug` and the logs), and what must never be shown.
pub(crate) struct Connected {
    pub(crate) conn: Connection,
    pub(crate) target: String,
    pub(crate) secrets: Secrets,
}

impl Servers {
    fn urls(&self) -> &[String] {
        match self {
            Servers::One(url) => core::slice::from_ref(url),
            Servers::Cluster(urls) => urls,
        }
    }

    /// `host:port/db`, or `cluster(host:port/db, ...)`: where the servers are, never who logs in.
    pub(crate) fn describe(&self) -> String {
        let shown = |url: &String| match url.as_str().into_connection_info() {
            Ok(info) => target(&info),
            Err(_) => "(an unreadable URL)".to_owned(),
        };
        match self {
            Servers::One(url) => shown(url),
            Servers::Cluster(urls) => format!("cluster({})", urls.iter().map(shown).collect::<Vec<_>>().join(", ")),
        }
    }

    /// Connects, within `settings.connect_timeout`.
    pub(crate) async fn connect(&self, settings: &Settings<'_>) -> Result<Connected, StoreError> {
        // Every URL is a secret before it is read: a parse error may quote any of them.
        let mut secrets = Secrets::default();
        for url in self.urls() {
            secrets.add(url, None);
        }
        let mut infos = Vec::with_capacity(self.urls().len());
        for url in self.urls() {
            let info = parse(url, &secrets)?;
            secrets.add(url, Some(&info));
            infos.push(info);
        }
        let tls = infos.iter().filter(|i| matches!(i.addr(), ConnectionAddr::TcpTls { .. })).count();
        if settings.root_certificates.is_some() && tls < infos.len() {
            return Err(StoreError::Unavailable(
                "CA certificates were given for a server without TLS: use rediss:// URLs".to_owned(),
            ));
        }
        #[cfg(feature = "tls")]
        if tls > 0 {
            install_crypto_provider();
        }
        let conn = match self {
            Servers::One(_) => {
                let info = infos.pop().ok_or_else(|| StoreError::Unavailable("no Redis URL".to_owned()))?;
                let client = client(info, settings.root_certificates).map_err(|e| from_redis(&e, &secrets))?;
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(settings.command_timeout))
                    .set_connection_timeout(Some(settings.connect_timeout))
                    .set_number_of_retries(RECONNECT_RETRIES)
                    .set_min_delay(RECONNECT_MIN_DELAY)
                    .set_max_delay(RECONNECT_MAX_DELAY);
                let manager = ConnectionManager::new_with_config(client, config);
                Connection::One(within(settings.connect_timeout, manager, &secrets).await?)
            }
            Servers::Cluster(_) => {
                if infos.is_empty() {
                    return Err(StoreError::Unavailable("a cluster store needs one node's URL at least".to_owned()));
                }
                let builder = ClusterClientBuilder::new(infos)
                    .connection_timeout(settings.connect_timeout)
                    .response_timeout(settings.command_timeout)
                    .retries(CLUSTER_RETRIES)
                    .min_retry_wait(duration_ms(RECONNECT_MIN_DELAY))
                    .max_retry_wait(duration_ms(RECONNECT_MAX_DELAY));
                #[cfg(feature = "tls")]
                let builder = match settings.root_certificates {
                    Some(pem) => builder.certs(certificates(pem)),
                    None => builder,
                };
                let client = builder.build().map_err(|e| from_redis(&e, &secrets))?;
                Connection::Cluster(within(settings.connect_timeout, client.get_async_connection(), &secrets).await?)
            }
        };
        Ok(Connected { conn, target: self.describe(), secrets })
    }
}

/// A URL as the redis crate reads it, with a plain word when TLS is asked of a build without it.
fn parse(url: &str, secrets: &Secrets) -> Result<ConnectionInfo, StoreError> {
    #[cfg(not(feature = "tls"))]
    {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if matches!(scheme.as_deref(), Some("rediss" | "valkeys")) {
            return Err(StoreError::Unavailable(
                "a rediss:// URL needs the `tls` feature of llm-retry-redis".to_owned(),
            ));
        }
    }
    url.into_connection_info().map_err(|e| {
        StoreError::Unavailable(format!("the Redis URL could not be read: {}", secrets.redact(&e.to_string())))
    })
}

/// A single server's client: trusting `roots` when given (`tls` only), the system's CAs if not.
fn client(info: ConnectionInfo, roots: Option<&[u8]>) -> RedisResult<redis::Client> {
    #[cfg(feature = "tls")]
    if let Some(pem) = roots {
        return redis::Client::build_with_tls(info, certificates(pem));
    }
    #[cfg(not(feature = "tls"))]
    let _ = roots;
    redis::Client::open(info)
}

#[cfg(feature = "tls")]
fn certificates(pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) }
}

/// rustls panics when it builds a TLS client with no process-wide crypto provider installed
/// and two named by its features (another crate may enable `ring`): install aws-lc-rs when the
/// application has not installed one of its own. Losing a race to another thread's install is
/// fine: one provider is in place either way.
#[cfg(feature = "tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// Connecting, bounded by `timeout`.
async fn within<T>(
    timeout: Duration,
    connecting: impl Future<Output = RedisResult<T>>,
    secrets: &Secrets,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(StoreError::Timeout),
        Ok(r) => r.map_err(|e| from_redis(&e, secrets)),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `host:port/db`, or the socket's path: what may be shown of where a server is.
fn target(info: &ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        a @ (ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. }) => format!("{a}/{db}"),
        ConnectionAddr::Unix(path) => format!("{}/{db}", path.display()),
        _ => format!("?/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_described_without_credentials() {
        let one = Servers::One("redis://fleet:hunter2@10.0.0.1:6380/2".to_owned());
        assert_eq!(one.describe(), "10.0.0.1:6380/2");
        let cluster = Servers::Cluster(vec![
            "redis://:hunter2@10.0.0.1:7000".to_owned(),
            "redis://:hunter2@10.0.0.2:7000".to_owned(),
            "no url at all hunter2".to_owned(),
        ]);
        let shown = cluster.describe();
        assert_eq!(shown, "cluster(10.0.0.1:7000/0, 10.0.0.2:7000/0, (an unreadable URL))");
    }

    #[tokio::test]
    async fn bad_inputs_are_errors_that_keep_secrets() {
        let settings = Settings {
            command_timeout: Duration::from_millis(25),
            connect_timeout: Duration::from_millis(250),
            root_certificates: None,
        };
        let empty = Servers::Cluster(Vec::new()).connect(&settings).await.err();
        assert!(matches!(empty, Some(StoreError::Unavailable(_))), "{empty:?}");
        for bad in ["redis://u:hunter2@[::1", "nope://u:hunter2@host"] {
            for servers in [Servers::One(bad.to_owned()), Servers::Cluster(vec![bad.to_owned()])] {
                let e = servers.connect(&settings).await.err().expect("an error");
                assert!(matches!(e, StoreError::Unavailable(_)) && !e.to_string().contains("hunter2"), "{e}");
            }
        }
        // Passwords that differ between seeds are refused by the cluster client, quietly.
        let mixed =
            Servers::Cluster(vec!["redis://:hunter2@127.0.0.1:1".to_owned(), "redis://:other3@127.0.0.1:2".to_owned()]);
        let e = mixed.connect(&settings).await.err().expect("an error");
        assert!(!e.to_string().contains("hunter2") && !e.to_string().contains("other3"), "{e}");
        // CA certificates are for TLS only.
        let with_roots = Settings { root_certificates: Some(b"-----BEGIN CERTIFICATE-----"), ..settings };
        let e = Servers::One("redis://127.0.0.1:1".to_owned()).connect(&with_roots).await.err();
        assert!(matches!(e, Some(StoreError::Unavailable(ref m)) if m.contains("rediss://")), "{e:?}");
    }

    #[cfg(not(feature = "tls"))]
    #[tokio::test]
    async fn tls_urls_need_the_tls_feature() {
        let settings = Settings {
            command_timeout: Duration::from_millis(25),
            connect_timeout: Duration::from_millis(250),
            root_certificates: None,
        };
        for url in ["rediss://:hunter2@127.0.0.1:1", "REDISS://127.0.0.1:1", "valkeys://127.0.0.1:1"] {
            let e = Servers::One(url.to_owned()).connect(&settings).await.err().expect("an error");
            assert!(e.to_string().contains("`tls` feature") && !e.to_string().contains("hunter2"), "{e}");
        }
    }
}
