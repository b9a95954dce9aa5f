//! What the Redis store's tests share: a server per test (or a plain skip), stores, asks,
//! and the instants the store meant an admission to go at.
#![cfg_attr(not(feature = "tls"), allow(dead_code))] // the certificates are the `tls` module's

use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{Admission, Ask, Store, Tuning};
use llm_retry_testkit::redis_cluster::RedisCluster;
use llm_retry_testkit::redis_server::{REQUIRE_ENV, RedisServer, Tls, skip_notice};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A fresh server, or `None` (with a plain notice) when redis-server is not installed.
pub fn server(test: &str) -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(Some(server)) => Some(server),
        Ok(None) => {
            skip_notice(test);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

pub async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url()).await.expect("the store connects")
}

/// The defaults with a configured request rate.
pub fn configured(requests_per_second: f64) -> Tuning {
    let mut t = Tuning::DEFAULT;
    t.requests_per_second = Some(requests_per_second);
    t
}

pub fn ask(endpoint: &str, worker: u64, tuning: Tuning) -> Ask<'_> {
    Ask { endpoint, worker, tokens: 0.0, max_wait: None, lease: None, tuning }
}

/// An admission, and the earliest and latest local instants it meant to send at: the
/// server computed `wait` from its own now, somewhere between our sending and its answer.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub admission: Admission,
    pub earliest: Instant,
    pub latest: Instant,
}

pub async fn timed(store: &RedisStore, ask: &Ask<'_>) -> Timed {
    let before = Instant::now();
    let admission = store.admit(ask).await.expect("an admission");
    let after = Instant::now();
    Timed { admission, earliest: before + admission.wait(), latest: after + admission.wait() }
}

/// `later` was meant to go `expected` after `first`, within a millisecond (the scripts
/// answer in whole microseconds).
pub fn assert_spaced(first: &Timed, later: &Timed, expected: Duration) {
    let slack = Duration::from_millis(1);
    let shortest = later.earliest.saturating_duration_since(first.latest);
    let longest = later.latest.saturating_duration_since(first.earliest);
    assert!(
        shortest <= expected + slack && longest + slack >= expected,
        "meant to go {expected:?} apart, but {shortest:?}..{longest:?}: {first:?} then {later:?}"
    );
}

/// A report's or any call's window: the server ran it between these local instants.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
}

impl Window {
    /// Runs `f`, and says when.
    pub async fn of<T>(f: impl Future<Output = T>) -> (T, Window) {
        let from = Instant::now();
        let out = f.await;
        (out, Window { from, to: Instant::now() })
    }

    /// How long before `later` this ran, at least and at most.
    pub fn before(&self, later: &Window) -> (Duration, Duration) {
        (later.from.saturating_duration_since(self.to), later.to.saturating_duration_since(self.from))
    }
}

/// `t` was meant to go `after` past a moment of `w`, within a millisecond.
pub fn assert_after(t: &Timed, w: &Window, after: Duration) {
    let slack = Duration::from_millis(1);
    assert!(
        t.latest + slack >= w.from + after && t.earliest <= w.to + after + slack,
        "meant to go {after:?} after {w:?}: {t:?}"
    );
}

pub fn go_rate(a: Admission) -> Option<f64> {
    match a {
        Admission::Go { rate, .. } => rate,
        other => panic!("not a go: {other:?}"),
    }
}

/// The store's keys now on the server, sorted.
pub fn keys(server: &RedisServer) -> Vec<String> {
    let all = server.command(&["KEYS", "*"]).expect("KEYS");
    let mut keys: Vec<String> = all.lines().map(str::to_owned).filter(|k| !k.is_empty()).collect();
    keys.sort();
    keys
}

/// A fresh three-master cluster, or `None` (with a plain notice) when redis-server is not
/// installed.
pub fn cluster(test: &str) -> Option<RedisCluster> {
    match RedisCluster::start() {
        Ok(Some(cluster)) => Some(cluster),
        Ok(None) => {
            skip_notice(test);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// A store on `cluster`, seeded with its first node only: it finds the others by itself.
pub async fn cluster_store(cluster: &RedisCluster) -> RedisStore {
    RedisStore::builder_cluster(&cluster.urls()[..1]).connect().await.expect("the store connects to the cluster")
}

/// The key of `endpoint`'s pacer state under the default prefix: its slot is the endpoint's.
pub fn pacer_key(endpoint: &str) -> String {
    format!("{{llm-retry:{endpoint}}}:p")
}

/// Endpoint names whose state lives on distinct nodes, one per node, in the order of the nodes.
pub fn endpoint_per_node(cluster: &RedisCluster) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; cluster.nodes().len()];
    for i in 0..200 {
        let name = format!("endpoint-{i}");
        let owner = cluster.owner(&pacer_key(&name)).expect("an owner");
        found[owner].get_or_insert(name);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found.into_iter().map(|n| n.expect("an endpoint on every node")).collect()
}

/// A throwaway CA, and a certificate it signed for `127.0.0.1` and `localhost`, made by the
/// `openssl` command line in a directory of their own that is removed on drop.
pub struct Certs {
    pub tls: Tls,
    dir: PathBuf,
}

impl Certs {
    /// The CA's certificate, in PEM: what clients are told to trust.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.tls.ca).expect("the CA certificate")
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fresh certificates, or `None` (with a plain notice) when `openssl` is not installed, unless
/// `LLM_RETRY_REQUIRE_REDIS=1`.
pub fn certs(test: &str) -> Option<Certs> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("llm-retry-certs-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).expect("a directory for the certificates");
    let tls = Tls { cert: dir.join("redis.crt"), key: dir.join("redis.key"), ca: dir.join("ca.crt") };
    let certs = Certs { tls, dir };
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(&certs.dir).stdin(Stdio::null()).output();
        match out {
            Ok(out) if out.status.success() => Ok(true),
            Ok(out) => Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("openssl: {e}")),
        }
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let args = |head: &[&'static str], tail: &[&'static str]| [head, &ec, tail].concat();
    let ca = args(
        &["req", "-x509"],
        &["-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=llm-retry test CA"],
    );
    let ca_usage = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    if !openssl(&[&ca[..], &ca_usage].concat()).expect("a CA") {
        assert!(std::env::var(REQUIRE_ENV).map_or(true, |v| v != "1"), "openssl is not installed, and {REQUIRE_ENV}=1");
        eprintln!("SKIPPED {test}: openssl is not installed (it makes the test's certificates)");
        return None;
    }
    openssl(&args(&["req"], &["-keyout", "redis.key", "-out", "redis.csr", "-subj", "/CN=localhost"]))
        .expect("a request");
    let ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
               keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n";
    std::fs::write(certs.dir.join("ext.cnf"), ext).expect("the extensions");
    let sign =
        ["x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"];
    openssl(&[&sign[..], &["-out", "redis.crt", "-extfile", "ext.cnf"]].concat()).expect("a certificate");
    Some(certs)
}
