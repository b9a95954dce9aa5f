//! The store when Redis misbehaves: scripts flushed, a stopped, paused, killed and restarted
//! server, and credentials that must never show.

use crate::common::{ask, configured, server, store};
use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{Admission, Store, StoreError};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Asks every 20 ms until the store answers; how long that took.
async fn until_it_answers(store: &RedisStore, within: Duration) -> Duration {
    let start = Instant::now();
    let a = ask("e", 1, configured(1000.0));
    loop {
        match store.admit(&a).await {
            Ok(Admission::Go { .. }) => return start.elapsed(),
            Ok(other) => panic!("{other:?}"),
            Err(e) => assert!(start.elapsed() < within, "still failing after {within:?}: {e}"),
        }
        tokio::time::sleep(20 * MS).await;
    }
}

#[tokio::test]
async fn a_script_flush_is_survived() {
    let Some(server) = server("a_script_flush_is_survived") else { return };
    let store = store(&server).await;
    let a = ask("e", 1, configured(1000.0));
    store.admit(&a).await.unwrap();
    let rules = llm_retry_runtime::store::BreakerRules::DEFAULT;
    let op = llm_retry_runtime::store::BreakerOp::Admit { breaker: "b", rules };
    store.breaker(op).await.unwrap();
    assert_eq!(server.command(&["SCRIPT", "FLUSH"]).unwrap(), "OK");
    assert!(matches!(store.admit(&a).await.unwrap(), Admission::Go { .. }));
    assert!(store.breaker(op).await.unwrap().admit);
    // Loaded again: the next calls are single EVALSHAs.
    assert!(matches!(store.admit(&a).await.unwrap(), Admission::Go { .. }));
}

#[tokio::test]
async fn a_stopped_server_times_out_within_the_timeout_and_answers_after_it_continues() {
    let Some(mut server) = server("a_stopped_server_times_out") else { return };
    let store = RedisStore::builder(&server.url()).command_timeout(25 * MS).connect().await.unwrap();
    let a = ask("e", 1, configured(1000.0));
    store.admit(&a).await.unwrap();
    server.pause().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(store.admit(&a).await, Err(StoreError::Timeout));
        let took = t.elapsed();
        assert!(took >= 25 * MS && took < 75 * MS, "{took:?}");
    }
    let t = Instant::now();
    let rules = llm_retry_runtime::store::BreakerRules::DEFAULT;
    let op = llm_retry_runtime::store::BreakerOp::Admit { breaker: "b", rules };
    assert_eq!(store.breaker(op).await, Err(StoreError::Timeout));
    assert!(t.elapsed() < 75 * MS);
    server.resume().unwrap();
    let took = until_it_answers(&store, Duration::from_secs(1)).await;
    println!("answered again {took:?} after SIGCONT");
}

#[tokio::test]
async fn a_client_pause_times_out_and_then_passes() {
    let Some(server) = server("a_client_pause_times_out_and_then_passes") else { return };
    let store = store(&server).await;
    let a = ask("e", 1, configured(1000.0));
    store.admit(&a).await.unwrap();
    assert_eq!(server.command(&["CLIENT", "PAUSE", "300"]).unwrap(), "OK");
    let t = Instant::now();
    assert_eq!(store.admit(&a).await, Err(StoreError::Timeout));
    assert!(t.elapsed() < 75 * MS);
    until_it_answers(&store, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_killed_and_restarted_server_answers_again_within_two_seconds() {
    let Some(mut server) = server("a_killed_and_restarted_server_answers_again") else { return };
    let store = store(&server).await;
    let a = ask("e", 1, configured(1000.0));
    store.admit(&a).await.unwrap();
    server.kill().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let e = store.admit(&a).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_) | StoreError::Timeout), "{e}");
        assert!(t.elapsed() < 75 * MS, "{:?}", t.elapsed());
    }
    server.restart().unwrap();
    // Empty and with no scripts: the scripts load again by themselves.
    let took = until_it_answers(&store, Duration::from_secs(2)).await;
    println!("answered again {took:?} after the restart");
}

#[tokio::test]
async fn credentials_never_show_in_debug_or_errors() {
    let Some(mut server) = server("credentials_never_show_in_debug_or_errors") else { return };
    let (user, password) = ("fleet-user-x", "s3cr3t-pw-42");
    let acl = ["ACL", "SETUSER", user, "on", ">s3cr3t-pw-42", "~*", "&*", "+@all"];
    assert_eq!(server.command(&acl).unwrap(), "OK");
    let port = server.port();
    let url = format!("redis://{user}:{password}@127.0.0.1:{port}/0");
    let hidden = |text: &str| !text.contains(password) && !text.contains(user);

    let builder = RedisStore::builder(&url);
    assert!(hidden(&format!("{builder:?}")), "{builder:?}");
    let store = builder.connect().await.unwrap();
    let shown = format!("{store:?}");
    assert!(hidden(&shown) && shown.contains(&format!("127.0.0.1:{port}/0")), "{shown}");
    assert!(matches!(store.admit(&ask("e", 1, configured(10.0))).await.unwrap(), Admission::Go { .. }));

    let wrong = format!("redis://{user}:wrong-{password}@127.0.0.1:{port}");
    let e = RedisStore::connect(&wrong).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(hidden(&e.to_string()) && hidden(&format!("{e:?}")), "{e}");

    server.kill().unwrap();
    let e = store.admit(&ask("e", 1, configured(10.0))).await.unwrap_err();
    assert!(hidden(&e.to_string()), "{e}");
    let e = RedisStore::connect(&url).await.unwrap_err();
    assert!(hidden(&e.to_string()) && hidden(&format!("{e:?}")), "{e}");
    for bad in [format!("redis://{user}:{password}@[::1"), format!("nope://{user}:{password}@host")] {
        let e = RedisStore::connect(&bad).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(hidden(&e.to_string()), "{e}");
        assert!(hidden(&format!("{:?}", RedisStore::builder(&bad))));
    }
}

#[tokio::test]
async fn nothing_listening_fails_at_once() {
    let Some(mut server) = server("nothing_listening_fails_at_once") else { return };
    let url = server.url();
    server.kill().unwrap();
    let t = Instant::now();
    let e = RedisStore::connect(&url).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(t.elapsed() < RedisStore::DEFAULT_CONNECT_TIMEOUT + 50 * MS, "{:?}", t.elapsed());
}
