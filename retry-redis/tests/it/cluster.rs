//! The store against a private Redis Cluster (three masters, no replicas): each endpoint's
//! state lives whole on the node of its hash tag, endpoints on different nodes keep their own
//! pacing, pauses and leases, the breaker's one probe holds, a `SCRIPT FLUSH` everywhere is
//! survived, and a dead or stopped node fails its own endpoints within the timeout, not the
//! others'.

use crate::common::{
    Window, ask, assert_after, assert_spaced, cluster, cluster_store, configured, endpoint_per_node, pacer_key, timed,
};
use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{Admission, Ask, BreakerOp, BreakerRules, Report, Store, StoreError};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

fn lease(a: Admission) -> u64 {
    match a {
        Admission::Go { lease: Some(l), .. } => l,
        other => panic!("a lease: {other:?}"),
    }
}

/// Asks every 20 ms until `endpoint` answers; how long that took.
async fn until_it_answers(store: &RedisStore, endpoint: &str, within: Duration) -> Duration {
    let start = Instant::now();
    let a = ask(endpoint, 1, configured(1000.0));
    loop {
        match store.admit(&a).await {
            Ok(Admission::Go { .. }) => return start.elapsed(),
            Ok(other) => panic!("{other:?}"),
            Err(e) => assert!(start.elapsed() < within, "still failing after {within:?}: {e}"),
        }
        tokio::time::sleep(20 * MS).await;
    }
}

/// A breaker name whose state lives on node `node`.
fn breaker_on(cluster: &llm_retry_testkit::redis_cluster::RedisCluster, node: usize) -> String {
    (0..200)
        .map(|i| format!("breaker-{i}"))
        .find(|b| cluster.owner(&format!("{{llm-retry:b:{b}}}")).unwrap() == node)
        .expect("a breaker on the node")
}

#[tokio::test]
async fn endpoints_on_different_nodes_keep_their_own_state() {
    let Some(cluster) = cluster("endpoints_on_different_nodes_keep_their_own_state") else { return };
    let names = endpoint_per_node(&cluster);
    let (spaced, paused, leased) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
    // One seed; a second store (another worker) seeded with another node.
    let store = cluster_store(&cluster).await;
    let other = RedisStore::builder_cluster(&cluster.urls()[2..]).connect().await.unwrap();

    // A throttle's pause on one node's endpoint...
    let tuning = configured(1000.0);
    store.admit(&ask(paused, 1, tuning)).await.unwrap();
    let (r, throttled) =
        Window::of(store.report(paused, Report::Throttle { retry_after: Some(150 * MS), tuning })).await;
    r.unwrap();
    // ...does not hold another node's endpoint, spaced at its configured rate...
    let mut times = Vec::new();
    for k in 0..4 {
        let s = if k % 2 == 0 { &store } else { &other };
        times.push(timed(s, &ask(spaced, 1, configured(100.0))).await);
    }
    assert_eq!(times[0].admission.wait(), Duration::ZERO);
    for (k, t) in times.iter().enumerate() {
        assert_spaced(&times[0], t, 10 * MS * u32::try_from(k).unwrap());
    }
    // ...and holds the other worker's admissions to its own endpoint.
    let held = timed(&other, &ask(paused, 2, tuning)).await;
    assert_after(&held, &throttled, 150 * MS);

    // Leases on the third node: the cap counts both workers'.
    let mut capped = configured(100_000.0);
    capped.max_in_flight = Some(2);
    let leased_ask = Ask { lease: Some(2000 * MS), ..ask(leased, 1, capped) };
    let first = lease(store.admit(&leased_ask).await.unwrap());
    lease(other.admit(&leased_ask).await.unwrap());
    assert!(matches!(store.admit(&leased_ask).await.unwrap(), Admission::Busy { .. }));
    other.report(leased, Report::Release { lease: first }).await.unwrap();
    lease(store.admit(&leased_ask).await.unwrap());

    // Each endpoint's keys live on its own node only.
    for (i, name) in names.iter().enumerate() {
        for (j, node) in cluster.nodes().iter().enumerate() {
            let here = node.command(&["EXISTS", &pacer_key(name)]);
            if i == j {
                assert_eq!(here.unwrap(), "1", "{name} on node {j}");
            } else {
                assert!(here.unwrap_err().starts_with("MOVED"), "{name} not on node {j}");
            }
        }
    }
    let leases = format!("{{llm-retry:{leased}}}:l");
    assert_eq!(cluster.nodes()[2].command(&["ZCARD", &leases]).unwrap(), "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_probe_among_concurrent_admits_in_a_cluster() {
    let Some(cluster) = cluster("exactly_one_probe_among_concurrent_admits_in_a_cluster") else { return };
    let mut stores = Vec::new();
    for i in 0..4 {
        stores.push(RedisStore::builder_cluster(&cluster.urls()[i % 3..=i % 3]).connect().await.unwrap());
    }
    let mut rules = BreakerRules::DEFAULT;
    rules.cooldown = 30 * MS;
    for name in ["gpt", "claude", "gemini"] {
        stores[0].breaker(BreakerOp::Trip { breaker: name, rules, wait: 30 * MS }).await.unwrap();
    }
    tokio::time::sleep(35 * MS).await;
    for name in ["gpt", "claude", "gemini"] {
        let mut tasks = Vec::new();
        for i in 0..12 {
            let store = stores[i % 4].clone();
            let op = BreakerOp::Admit { breaker: name, rules };
            tasks.push(tokio::spawn(async move { store.breaker(op).await.unwrap() }));
        }
        let mut probes = 0;
        for t in tasks {
            probes += usize::from(t.await.unwrap().probe);
        }
        assert_eq!(probes, 1, "{name}: one probe");
    }
    // Three breakers, over more than one node: each is a hash of its own tag.
    let owners: std::collections::BTreeSet<usize> =
        ["gpt", "claude", "gemini"].iter().map(|b| cluster.owner(&format!("{{llm-retry:b:{b}}}")).unwrap()).collect();
    assert!(owners.len() > 1, "{owners:?}");
}

#[tokio::test]
async fn a_script_flush_on_every_node_is_survived() {
    let Some(cluster) = cluster("a_script_flush_on_every_node_is_survived") else { return };
    let store = cluster_store(&cluster).await;
    let names = endpoint_per_node(&cluster);
    let op = BreakerOp::Admit { breaker: "b", rules: BreakerRules::DEFAULT };
    for round in 0..2 {
        for name in &names {
            assert!(matches!(store.admit(&ask(name, 1, configured(1000.0))).await.unwrap(), Admission::Go { .. }));
        }
        assert!(store.breaker(op).await.unwrap().admit);
        assert_eq!(cluster.command_all(&["SCRIPT", "FLUSH"]).unwrap(), ["OK"; 3], "round {round}");
    }
    // The first call after the flush runs the script by its source, which caches it on that
    // node; every later call is an EVALSHA again.
    assert_eq!(cluster.command_all(&["CONFIG", "RESETSTAT"]).unwrap(), ["OK"; 3]);
    for _ in 0..3 {
        for name in &names {
            assert!(matches!(store.admit(&ask(name, 1, configured(1000.0))).await.unwrap(), Admission::Go { .. }));
        }
    }
    for (i, node) in cluster.nodes().iter().enumerate() {
        let stats = node.command(&["INFO", "commandstats"]).unwrap();
        let calls = |command: &str| {
            let line = stats.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:")));
            line.and_then(|l| l.split(['=', ',']).nth(1)?.parse::<u32>().ok()).unwrap_or(0)
        };
        assert_eq!((calls("eval"), calls("evalsha")), (1, 3), "node {i}: {stats}");
    }
}

#[tokio::test]
async fn a_killed_node_fails_its_own_endpoints_within_the_timeout_and_no_others() {
    let Some(mut cluster) = cluster("a_killed_node_fails_its_own_endpoints_within_the_timeout") else { return };
    let store = RedisStore::builder_cluster(cluster.urls()).connect().await.unwrap();
    let names = endpoint_per_node(&cluster);
    for name in &names {
        store.admit(&ask(name, 1, configured(1000.0))).await.unwrap();
    }
    let dead_breaker = breaker_on(&cluster, 0);
    cluster.node_mut(0).unwrap().kill().unwrap();
    // The survivors lose their scripts too: running them again must not need the dead node
    // (SCRIPT LOAD goes to every node, and fails while one is down).
    cluster.command_all(&["SCRIPT", "FLUSH"]).unwrap();
    for _ in 0..3 {
        for name in &names[1..] {
            let a = store.admit(&ask(name, 1, configured(1000.0))).await;
            assert!(matches!(a, Ok(Admission::Go { .. })), "{name} on a live node: {a:?}");
        }
        let t = Instant::now();
        let e = store.admit(&ask(&names[0], 1, configured(1000.0))).await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_) | StoreError::Timeout), "{e}");
        assert!(t.elapsed() < 75 * MS, "{:?}", t.elapsed());
        let t = Instant::now();
        let op = BreakerOp::Admit { breaker: &dead_breaker, rules: BreakerRules::DEFAULT };
        assert!(store.breaker(op).await.is_err());
        assert!(t.elapsed() < 75 * MS, "{:?}", t.elapsed());
    }
    cluster.node_mut(0).unwrap().restart().unwrap();
    cluster.wait_until_ok().unwrap();
    // Restarted empty, with no scripts: it answers again.
    let took = until_it_answers(&store, &names[0], Duration::from_secs(2)).await;
    println!("answered again {took:?} after the restart");
}

#[tokio::test]
async fn a_stopped_node_times_out_within_the_timeout() {
    let Some(mut cluster) = cluster("a_stopped_node_times_out_within_the_timeout") else { return };
    let store = cluster_store(&cluster).await;
    let names = endpoint_per_node(&cluster);
    for name in &names {
        store.admit(&ask(name, 1, configured(1000.0))).await.unwrap();
    }
    cluster.node_mut(1).unwrap().pause().unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(store.admit(&ask(&names[1], 1, configured(1000.0))).await, Err(StoreError::Timeout));
        let took = t.elapsed();
        assert!(took >= 25 * MS && took < 75 * MS, "{took:?}");
        let a = store.admit(&ask(&names[2], 1, configured(1000.0))).await;
        assert!(matches!(a, Ok(Admission::Go { .. })), "{a:?}");
    }
    cluster.node_mut(1).unwrap().resume().unwrap();
    let took = until_it_answers(&store, &names[1], Duration::from_secs(1)).await;
    println!("answered again {took:?} after SIGCONT");
}

#[tokio::test]
async fn cluster_credentials_never_show_in_debug_or_errors() {
    let Some(mut cluster) = cluster("cluster_credentials_never_show_in_debug_or_errors") else { return };
    let (user, password) = ("fleet-user-x", "s3cr3t-pw-42");
    let acl = ["ACL", "SETUSER", user, "on", ">s3cr3t-pw-42", "~*", "&*", "+@all"];
    assert_eq!(cluster.command_all(&acl).unwrap(), ["OK"; 3]);
    let ports: Vec<u16> = cluster.nodes().iter().map(|n| n.port()).collect();
    let with =
        |pw: &str| -> Vec<String> { ports.iter().map(|p| format!("redis://{user}:{pw}@127.0.0.1:{p}")).collect() };
    let hidden = |text: &str| !text.contains(password) && !text.contains(user);

    let builder = RedisStore::builder_cluster(with(password));
    assert!(hidden(&format!("{builder:?}")), "{builder:?}");
    let store = builder.connect().await.unwrap();
    let shown = format!("{store:?}");
    assert!(hidden(&shown) && shown.contains(&format!("127.0.0.1:{}/0", ports[0])), "{shown}");
    for name in endpoint_per_node(&cluster) {
        assert!(matches!(store.admit(&ask(&name, 1, configured(10.0))).await.unwrap(), Admission::Go { .. }));
    }

    let e = RedisStore::builder_cluster(with(&format!("wrong-{password}"))).connect().await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(hidden(&e.to_string()) && hidden(&format!("{e:?}")), "{e}");

    let name = &endpoint_per_node(&cluster)[0];
    cluster.node_mut(0).unwrap().kill().unwrap();
    let e = store.admit(&ask(name, 1, configured(10.0))).await.unwrap_err();
    assert!(hidden(&e.to_string()), "{e}");
    let mixed = vec![with(password)[0].clone(), format!("redis://other:{password}x@127.0.0.1:1")];
    let e = RedisStore::builder_cluster(mixed).connect().await.unwrap_err();
    assert!(hidden(&e.to_string()), "{e}");
}

#[tokio::test]
async fn a_slot_moved_to_another_node_is_followed() {
    let Some(cluster) = cluster("a_slot_moved_to_another_node_is_followed") else { return };
    let store = cluster_store(&cluster).await;
    let names = endpoint_per_node(&cluster);
    // The store learns the slot map with its first calls.
    for name in &names[1..] {
        store.admit(&ask(name, 1, configured(1000.0))).await.unwrap();
    }
    // An endpoint that has no keys yet: its empty slot moves from node 0 to node 1, as a
    // resharding (or a failover) moves slots.
    let moving = &names[0];
    let slot = cluster.nodes()[0].command(&["CLUSTER", "KEYSLOT", &pacer_key(moving)]).unwrap();
    let to = cluster.nodes()[1].command(&["CLUSTER", "MYID"]).unwrap();
    assert_eq!(cluster.command_all(&["CLUSTER", "SETSLOT", &slot, "NODE", &to]).unwrap(), ["OK"; 3]);
    assert_eq!(cluster.owner(&pacer_key(moving)).unwrap(), 1);
    // At most one call fails (the one told MOVED: never sent twice), and the slot map is
    // refreshed for the next.
    let a = ask(moving, 1, configured(1000.0));
    let mut failed = 0;
    let start = Instant::now();
    loop {
        match store.admit(&a).await {
            Ok(Admission::Go { .. }) => break,
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert!(matches!(e, StoreError::Unavailable(ref m) if m.to_lowercase().contains("moved")), "{e:?}");
                failed += 1;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{failed} failed calls");
    }
    assert!(failed <= 1, "{failed} failed calls");
    assert_eq!(cluster.nodes()[1].command(&["EXISTS", &pacer_key(moving)]).unwrap(), "1");
}

#[tokio::test]
async fn a_server_that_is_not_a_cluster_is_refused_at_connect() {
    let Some(server) = crate::common::server("a_server_that_is_not_a_cluster_is_refused_at_connect") else { return };
    let t = Instant::now();
    let e = RedisStore::builder_cluster([server.url()]).connect().await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(t.elapsed() < RedisStore::DEFAULT_CONNECT_TIMEOUT + 50 * MS, "{:?}", t.elapsed());
    println!("{e}");
}
