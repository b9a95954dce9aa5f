//! What the Redis store's tests share: a server per test (or a plain skip), stores, asks,
//! and the instants the store meant an admission to go at.
#![allow(dead_code)] // each test binary uses a part

use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{Admission, Ask, Store, Tuning};
use llm_retry_testkit::redis_server::{RedisServer, skip_notice};
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
