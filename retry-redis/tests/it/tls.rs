//! `rediss://` against redis-server's own TLS (a throwaway CA and certificate made by the
//! `openssl` command line): a single server and a three-master cluster whose nodes talk TLS,
//! certificates that are not trusted, and URLs that ask for less than TLS.
#![cfg(feature = "tls")]

use crate::common::{Certs, ask, assert_spaced, certs, configured, timed};
use llm_retry_redis::RedisStore;
use llm_retry_runtime::store::{Admission, Store, StoreError};
use llm_retry_testkit::redis_cluster::RedisCluster;
use llm_retry_testkit::redis_server::{RedisServer, skip_notice};
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Certificates and a server with TLS, or `None` (with a notice) when either tool is missing.
fn tls_server(test: &str) -> Option<(Certs, RedisServer)> {
    let certs = certs(test)?;
    match RedisServer::start_tls(&certs.tls) {
        Ok(Some(server)) => Some((certs, server)),
        Ok(None) => {
            skip_notice(test);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// The local ports of the server's clients (`CLIENT LIST`'s `laddr`): which port each client
/// came in through.
fn client_ports(server: &RedisServer) -> Vec<u16> {
    let list = server.command(&["CLIENT", "LIST"]).unwrap();
    list.split_whitespace().filter_map(|field| field.strip_prefix("laddr=")?.rsplit_once(':')?.1.parse().ok()).collect()
}

fn tls_port(url: &str) -> u16 {
    url.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("a port")
}

#[tokio::test]
async fn a_tls_server_trusted_through_its_ca_paces_and_keeps_credentials_hidden() {
    let Some((certs, server)) = tls_server("a_tls_server_trusted_through_its_ca_paces") else { return };
    let (user, password) = ("fleet-user-x", "s3cr3t-pw-42");
    let acl = ["ACL", "SETUSER", user, "on", ">s3cr3t-pw-42", "~*", "&*", "+@all"];
    assert_eq!(server.command(&acl).unwrap(), "OK");
    let tls_url = server.tls_url().unwrap();
    let url = tls_url.replace("rediss://", &format!("rediss://{user}:{password}@"));

    let builder = RedisStore::builder(&url).tls_root_certificates(certs.ca_pem());
    let shown = format!("{builder:?}");
    assert!(!shown.contains(password) && !shown.contains(user) && !shown.contains("BEGIN"), "{shown}");
    let store = builder.connect().await.unwrap();
    assert!(!format!("{store:?}").contains(password));
    let a = ask("openai", 1, configured(100.0));
    let mut times = Vec::new();
    for _ in 0..4 {
        times.push(timed(&store, &a).await);
    }
    for (k, t) in times.iter().enumerate() {
        assert_spaced(&times[0], t, 10 * MS * u32::try_from(k).unwrap());
    }
    // The store came in through the TLS port.
    assert!(client_ports(&server).contains(&tls_port(&tls_url)), "{:?}", client_ports(&server));

    // `localhost` is in the certificate too.
    let by_name = tls_url.replace("127.0.0.1", "localhost");
    let store = RedisStore::builder(&by_name).tls_root_certificates(certs.ca_pem()).connect().await.unwrap();
    assert!(matches!(store.admit(&a).await.unwrap(), Admission::Go { .. }));
}

#[tokio::test]
async fn certificates_that_are_not_trusted_and_urls_without_tls_are_refused() {
    let Some((ours, server)) = tls_server("certificates_that_are_not_trusted") else { return };
    let tls_url = server.tls_url().unwrap();
    let untrusted = |e: &StoreError| matches!(e, StoreError::Unavailable(m) if m.contains("invalid peer certificate"));
    // The default roots (the system's, or with `tls-webpki-roots` Mozilla's) do not hold the
    // throwaway CA.
    let t = Instant::now();
    let e = RedisStore::connect(&tls_url).await.unwrap_err();
    assert!(untrusted(&e), "{e:?}");
    assert!(t.elapsed() < RedisStore::DEFAULT_CONNECT_TIMEOUT + 50 * MS, "{:?}", t.elapsed());
    // Neither does another CA, nor garbage.
    let Some(other) = certs("another CA") else { return };
    for roots in [other.ca_pem(), b"not a certificate".to_vec(), Vec::new()] {
        let e = RedisStore::builder(&tls_url).tls_root_certificates(roots).connect().await.unwrap_err();
        assert!(untrusted(&e), "{e:?}");
    }
    // Checking no certificate at all is not offered.
    let e = RedisStore::builder(&format!("{tls_url}/#insecure")).connect().await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(ref m) if m.contains("insecure")), "{e:?}");
    // Plain Redis to the TLS port fails within the connect timeout, and a plain URL with a CA
    // is a mistake said plainly.
    let plain = tls_url.replace("rediss://", "redis://");
    let t = Instant::now();
    assert!(RedisStore::connect(&plain).await.is_err());
    assert!(t.elapsed() < RedisStore::DEFAULT_CONNECT_TIMEOUT + 50 * MS, "{:?}", t.elapsed());
    let e = RedisStore::builder(&server.url()).tls_root_certificates(ours.ca_pem()).connect().await.unwrap_err();
    assert!(e.to_string().contains("rediss://"), "{e}");
}

#[tokio::test]
async fn a_tls_cluster_routes_every_endpoint_over_tls() {
    let test = "a_tls_cluster_routes_every_endpoint_over_tls";
    let Some(certs) = certs(test) else { return };
    let cluster = match RedisCluster::start_tls(&certs.tls) {
        Ok(Some(cluster)) => cluster,
        Ok(None) => return skip_notice(test),
        Err(e) => panic!("{e}"),
    };
    let seeds = cluster.tls_urls().unwrap();
    let store = RedisStore::builder_cluster(&seeds[..1]).tls_root_certificates(certs.ca_pem()).connect().await.unwrap();
    for name in crate::common::endpoint_per_node(&cluster) {
        let a = ask(&name, 1, configured(100.0));
        let (first, second) = (timed(&store, &a).await, timed(&store, &a).await);
        assert_spaced(&first, &second, 10 * MS);
    }
    // Every node was reached through its TLS port: the cluster told the client those.
    for (node, url) in cluster.nodes().iter().zip(&seeds) {
        assert!(client_ports(node).contains(&tls_port(url)), "{url}: {:?}", client_ports(node));
    }
    // Without the CA, the cluster's certificates are refused too.
    assert!(RedisStore::builder_cluster(&seeds).connect().await.is_err());
}
