//! The shared breaker against a real redis-server: the in-memory machine's transitions, and
//! exactly one half-open probe fleet-wide.

use crate::common::{server, store};
use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{BreakerAnswer, BreakerOp, BreakerRules, Outcome, SharedBreakerState, Store};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

fn rules(consecutive: u32, cooldown: Duration) -> BreakerRules {
    let mut r = BreakerRules::DEFAULT;
    r.consecutive_failures = consecutive;
    r.cooldown = cooldown;
    r
}

async fn admit(store: &RedisStore, rules: BreakerRules) -> BreakerAnswer {
    store.breaker(BreakerOp::Admit { breaker: "gpt", rules }).await.unwrap()
}

async fn record(store: &RedisStore, rules: BreakerRules, outcome: Outcome, probe: bool) -> BreakerAnswer {
    store.breaker(BreakerOp::Record { breaker: "gpt", rules, outcome, probe }).await.unwrap()
}

#[tokio::test]
async fn consecutive_failures_open_it_and_the_probe_decides() {
    let Some(server) = server("consecutive_failures_open_it_and_the_probe_decides") else { return };
    let store = store(&server).await;
    let r = rules(3, 100 * MS);
    let closed = admit(&store, r).await;
    assert_eq!(
        (closed.state, closed.admit, closed.probe, closed.changed),
        (SharedBreakerState::Closed, true, false, false)
    );
    record(&store, r, Outcome::Failure, false).await;
    record(&store, r, Outcome::Failure, false).await;
    // A success resets the count.
    record(&store, r, Outcome::Success, false).await;
    record(&store, r, Outcome::Failure, false).await;
    let a = record(&store, r, Outcome::Failure, false).await;
    assert_eq!((a.state, a.changed), (SharedBreakerState::Closed, false));
    let opened = record(&store, r, Outcome::Failure, false).await;
    assert_eq!((opened.state, opened.changed), (SharedBreakerState::Open, true));
    let open_for = opened.open_for.expect("open for");
    assert!(open_for > 90 * MS && open_for <= 100 * MS, "{open_for:?}");
    let refused = admit(&store, r).await;
    assert!(!refused.admit && refused.open_for.is_some() && !refused.changed);
    // The cooldown over: this caller probes, and no one else.
    tokio::time::sleep(open_for + MS).await;
    let probe = admit(&store, r).await;
    assert_eq!(
        probe,
        BreakerAnswer { state: SharedBreakerState::HalfOpen, admit: true, probe: true, open_for: None, changed: true }
    );
    let other = admit(&store, r).await;
    assert_eq!((other.state, other.admit, other.open_for), (SharedBreakerState::HalfOpen, false, None));
    // An attempt let through before it opened changes nothing.
    assert!(!record(&store, r, Outcome::Failure, false).await.changed);
    // The probe failed: open again, for a new cooldown.
    let reopened = record(&store, r, Outcome::Failure, true).await;
    assert_eq!((reopened.state, reopened.changed), (SharedBreakerState::Open, true));
    tokio::time::sleep(101 * MS).await;
    assert!(admit(&store, r).await.probe);
    // A probe that the caller's fault ended (neutral) closes it, as a success does.
    let closed = record(&store, r, Outcome::Neutral, true).await;
    assert_eq!((closed.state, closed.changed), (SharedBreakerState::Closed, true));
    assert!(admit(&store, r).await.admit);
}

#[tokio::test]
async fn the_failure_rate_opens_it_once_the_window_has_enough_calls() {
    let Some(server) = server("the_failure_rate_opens_it_once_the_window_has_enough_calls") else { return };
    let store = store(&server).await;
    let mut r = rules(1000, Duration::from_secs(30));
    r.min_calls = 6;
    // Alternating: 50% failures. Evaluated at failures, the first one once the window holds
    // min_calls attempts: the 7th (4 of 7 failed).
    for i in 0..6 {
        let outcome = if i % 2 == 0 { Outcome::Failure } else { Outcome::Success };
        assert_eq!(record(&store, r, outcome, false).await.state, SharedBreakerState::Closed, "at {i}");
    }
    let opened = record(&store, r, Outcome::Failure, false).await;
    assert_eq!((opened.state, opened.changed), (SharedBreakerState::Open, true));
}

#[tokio::test]
async fn the_window_expires_and_neutral_outcomes_count_nothing() {
    let Some(server) = server("the_window_expires_and_neutral_outcomes_count_nothing") else { return };
    let store = store(&server).await;
    let mut r = rules(1000, Duration::from_secs(30));
    r.min_calls = 3;
    r.window = 100 * MS;
    record(&store, r, Outcome::Failure, false).await;
    record(&store, r, Outcome::Failure, false).await;
    for _ in 0..10 {
        assert!(!record(&store, r, Outcome::Neutral, false).await.changed);
    }
    // One window later the count starts again: a third failure is not enough.
    tokio::time::sleep(110 * MS).await;
    assert_eq!(record(&store, r, Outcome::Failure, false).await.state, SharedBreakerState::Closed);
    record(&store, r, Outcome::Failure, false).await;
    assert_eq!(record(&store, r, Outcome::Failure, false).await.state, SharedBreakerState::Open);
}

#[tokio::test]
async fn a_trip_opens_it_for_the_wait_capped_and_never_shortens_it() {
    let Some(server) = server("a_trip_opens_it_for_the_wait_capped_and_never_shortens_it") else { return };
    let store = store(&server).await;
    let mut r = BreakerRules::DEFAULT;
    r.max_cooldown = Duration::from_secs(300);
    let trip = |wait| BreakerOp::Trip { breaker: "gpt", rules: r, wait };
    let a = store.breaker(trip(Duration::from_secs(200))).await.unwrap();
    assert_eq!((a.state, a.changed), (SharedBreakerState::Open, true));
    assert!(a.open_for.unwrap() > Duration::from_secs(199));
    let shorter = store.breaker(trip(Duration::from_secs(10))).await.unwrap();
    assert!(!shorter.changed && shorter.open_for.unwrap() > Duration::from_secs(199));
    let capped = store.breaker(trip(Duration::MAX)).await.unwrap();
    assert!(capped.changed);
    let open_for = capped.open_for.unwrap();
    assert!(open_for > Duration::from_secs(299) && open_for <= Duration::from_secs(300), "{open_for:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_probe_among_concurrent_admits_from_four_connections() {
    let Some(server) = server("exactly_one_probe_among_concurrent_admits_from_four_connections") else { return };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(store(&server).await);
    }
    let r = rules(5, 30 * MS);
    for round in 0..5 {
        let trip = BreakerOp::Trip { breaker: "gpt", rules: r, wait: 30 * MS };
        stores[0].breaker(trip).await.unwrap();
        tokio::time::sleep(35 * MS).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = stores[i % 4].clone();
            tasks.push(tokio::spawn(async move { admit(&store, r).await }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let probes = answers.iter().filter(|a| a.probe).count();
        let admitted = answers.iter().filter(|a| a.admit).count();
        let moved = answers.iter().filter(|a| a.changed).count();
        assert_eq!((probes, admitted, moved), (1, 1, 1), "round {round}: {answers:?}");
        assert!(answers.iter().all(|a| a.state == SharedBreakerState::HalfOpen));
        // Dropped before it settled: the next caller may probe, and only one.
        stores[1].breaker(BreakerOp::Release { breaker: "gpt" }).await.unwrap();
        let again: Vec<BreakerAnswer> = {
            let mut tasks = Vec::new();
            for i in 0..8 {
                let store = stores[i % 4].clone();
                tasks.push(tokio::spawn(async move { admit(&store, r).await }));
            }
            let mut v = Vec::new();
            for t in tasks {
                v.push(t.await.unwrap());
            }
            v
        };
        assert_eq!(again.iter().filter(|a| a.probe).count(), 1, "round {round} after the release");
    }
}

#[tokio::test]
async fn a_dead_probers_claim_expires_after_a_cooldown() {
    let Some(server) = server("a_dead_probers_claim_expires_after_a_cooldown") else { return };
    let store = store(&server).await;
    let r = rules(1, 100 * MS);
    record(&store, r, Outcome::Failure, false).await;
    tokio::time::sleep(101 * MS).await;
    assert!(admit(&store, r).await.probe);
    // Its prober died: no outcome, no release. Others wait for one cooldown, no longer.
    assert!(!admit(&store, r).await.admit);
    tokio::time::sleep(50 * MS).await;
    assert!(!admit(&store, r).await.admit);
    tokio::time::sleep(55 * MS).await;
    let next = admit(&store, r).await;
    assert_eq!((next.state, next.admit, next.probe, next.changed), (SharedBreakerState::HalfOpen, true, true, false));
    // Releasing a closed or open breaker changes nothing.
    let closed = record(&store, r, Outcome::Success, true).await;
    assert_eq!(closed.state, SharedBreakerState::Closed);
    let released = store.breaker(BreakerOp::Release { breaker: "gpt" }).await.unwrap();
    assert_eq!((released.state, released.changed), (SharedBreakerState::Closed, false));
}
