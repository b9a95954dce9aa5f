//! A private Redis Cluster for tests and examples: three masters and no replicas, each a
//! [`RedisServer`] in cluster mode on free loopback ports in a directory of its own, with the
//! slots split the way `redis-cli --cluster create` splits them. Each node can be killed,
//! paused and restarted on its own (a restarted node rejoins from its `nodes.conf`); dropping
//! the cluster ends every node and removes their directories.
//!
//! The cluster is made by the commands `redis-cli --cluster create` sends (`CLUSTER
//! ADDSLOTSRANGE`, `SET-CONFIG-EPOCH`, `MEET`), over the same few lines of RESP as
//! [`RedisServer::command`], so that only `redis-server` needs to be installed. Missing, it
//! skips or fails as [`RedisServer::start`] does (`LLM_RETRY_REQUIRE_REDIS=1`).
//!
//! ```no_run
//! use llm_retry_testkit::redis_cluster::RedisCluster;
//! use llm_retry_testkit::redis_server::skip_notice;
//!
//! let Some(mut cluster) = RedisCluster::start().expect("redis-server") else {
//!     skip_notice("my_cluster_test");
//!     return;
//! };
//! let seeds = cluster.urls(); // redis://127.0.0.1:<port> of every node
//! let owner = cluster.owner("{my-app:openai}:p").unwrap(); // the node serving that key's slot
//! cluster.node_mut(owner).unwrap().kill().unwrap();
//! cluster.node_mut(owner).unwrap().restart().unwrap();
//! cluster.wait_until_ok().unwrap();
//! # let _ = seeds;
//! ```

use crate::redis_server::{RedisServer, Tls};
use std::time::{Duration, Instant};

/// How long the nodes may take to agree that the cluster is up.
const OK_WITHIN: Duration = Duration::from_secs(10);
/// Redis Cluster's slots.
const SLOTS: u16 = 16384;

/// Three `redis-server` masters in one cluster on `127.0.0.1`. See the [module](self).
///
/// ```no_run
/// let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().expect("installed");
/// assert_eq!(cluster.nodes().len(), 3);
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// How many masters the cluster has.
    pub const MASTERS: usize = 3;

    /// Starts three nodes, makes them one cluster and waits (at most about 10 s) until every
    /// node says `cluster_state:ok`.
    ///
    /// # Errors
    ///
    /// `Ok(None)` when `redis-server` is not installed, unless `LLM_RETRY_REQUIRE_REDIS=1`
    /// (then an error). An error when a node does not start, or the cluster does not form.
    ///
    /// ```no_run
    /// match llm_retry_testkit::redis_cluster::RedisCluster::start() {
    ///     Ok(Some(cluster)) => println!("seeds: {:?}", cluster.urls()),
    ///     Ok(None) => println!("redis-server is not installed"),
    ///     Err(e) => panic!("{e}"),
    /// }
    /// ```
    pub fn start() -> Result<Option<RedisCluster>, String> {
        RedisCluster::start_with(None)
    }

    /// As [`RedisCluster::start`], with every node also listening with TLS
    /// ([`RedisCluster::tls_urls`]) and the nodes talking TLS to each other; a TLS client is told
    /// the nodes' TLS ports. The plain ports stay open for [`RedisServer::command`].
    ///
    /// # Errors
    ///
    /// As [`RedisCluster::start`], and [`RedisServer::start_tls`].
    ///
    /// ```no_run
    /// use llm_retry_testkit::{redis_cluster::RedisCluster, redis_server::Tls};
    /// let dir = std::path::Path::new("/tmp/certs");
    /// let tls = Tls { cert: dir.join("redis.crt"), key: dir.join("redis.key"), ca: dir.join("ca.crt") };
    /// let cluster = RedisCluster::start_tls(&tls).unwrap().expect("installed");
    /// assert!(cluster.tls_urls().unwrap()[0].starts_with("rediss://"));
    /// ```
    pub fn start_tls(tls: &Tls) -> Result<Option<RedisCluster>, String> {
        RedisCluster::start_with(Some(tls))
    }

    fn start_with(tls: Option<&Tls>) -> Result<Option<RedisCluster>, String> {
        let mut nodes = Vec::with_capacity(RedisCluster::MASTERS);
        for _ in 0..RedisCluster::MASTERS {
            match RedisServer::start_with(tls, true)? {
                Some(node) => nodes.push(node),
                None => return Ok(None),
            }
        }
        let cluster = RedisCluster { nodes };
        cluster.form()?;
        cluster.wait_until_ok()?;
        Ok(Some(cluster))
    }

    /// What `redis-cli --cluster create --cluster-replicas 0` does: an equal share of the slots
    /// for each node and distinct config epochs; then every node meets every other directly,
    /// where redis-cli meets them all through the first: each node then hears every other's
    /// slots in the handshake itself, not a gossip round later. That saves about 0.25 s a
    /// cluster (retry-redis's cluster tests: 9.5 s to 8.5 s); the rest of the 2 s a cluster takes
    /// to say `cluster_state:ok` is Redis's own wait before a freshly started master serves.
    fn form(&self) -> Result<(), String> {
        let n = u16::try_from(self.nodes.len()).map_err(|_| "too many nodes")?;
        for (i, node) in (0..n).zip(&self.nodes) {
            let (first, last) = (SLOTS / n * i, if i + 1 == n { SLOTS - 1 } else { SLOTS / n * (i + 1) - 1 });
            node.command(&["CLUSTER", "ADDSLOTSRANGE", &first.to_string(), &last.to_string()])
                .map_err(|e| format!("ADDSLOTSRANGE on node {i}: {e}"))?;
            node.command(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])
                .map_err(|e| format!("SET-CONFIG-EPOCH on node {i}: {e}"))?;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for other in &self.nodes[i + 1..] {
                let port = other.client_port().to_string();
                let bus = other.bus_port().ok_or("a node not in cluster mode")?.to_string();
                node.command(&["CLUSTER", "MEET", "127.0.0.1", &port, &bus])
                    .map_err(|e| format!("CLUSTER MEET: {e}"))?;
            }
        }
        Ok(())
    }

    /// Waits (at most about 10 s) until every running node says `cluster_state:ok` and knows
    /// every node: after forming it, or after a node restarts.
    ///
    /// # Errors
    ///
    /// What the nodes last said, when they do not agree in time.
    ///
    /// ```no_run
    /// # let mut cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// cluster.node_mut(0).unwrap().kill().unwrap();
    /// cluster.node_mut(0).unwrap().restart().unwrap();
    /// cluster.wait_until_ok().unwrap();
    /// ```
    pub fn wait_until_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + OK_WITHIN;
        let known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let mut last = Ok(());
            for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.pid().is_some()) {
                match node.command(&["CLUSTER", "INFO"]) {
                    Ok(info) if info.contains("cluster_state:ok") && info.lines().any(|l| l.trim() == known) => {}
                    Ok(info) => {
                        last = Err(format!("node {i}: {}", info.lines().take(6).collect::<Vec<_>>().join(", ")))
                    }
                    Err(e) => last = Err(format!("node {i}: {e}")),
                }
            }
            match last {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("the cluster is not up after {OK_WITHIN:?}: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `redis://127.0.0.1:<port>` of every node: the seeds a cluster client starts from.
    ///
    /// ```no_run
    /// # let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// assert_eq!(cluster.urls().len(), 3);
    /// ```
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `rediss://127.0.0.1:<TLS port>` of every node, when started with
    /// [`RedisCluster::start_tls`].
    ///
    /// ```no_run
    /// # let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// assert_eq!(cluster.tls_urls(), None);
    /// ```
    pub fn tls_urls(&self) -> Option<Vec<String>> {
        self.nodes.iter().map(RedisServer::tls_url).collect()
    }

    /// The nodes, in the order of their slots (node 0 serves slots 0 to 5460).
    ///
    /// ```no_run
    /// # let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// for node in cluster.nodes() {
    ///     assert_eq!(node.command(&["PING"]).unwrap(), "PONG");
    /// }
    /// ```
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Node `i`, to kill, pause, resume or restart it.
    ///
    /// ```no_run
    /// # let mut cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// cluster.node_mut(1).unwrap().pause().unwrap();
    /// cluster.node_mut(1).unwrap().resume().unwrap();
    /// assert!(cluster.node_mut(3).is_none());
    /// ```
    pub fn node_mut(&mut self, i: usize) -> Option<&mut RedisServer> {
        self.nodes.get_mut(i)
    }

    /// The index of the node that serves `key`'s slot, as a running node sees the cluster (so
    /// a killed node is still found as the owner of its slots).
    ///
    /// # Errors
    ///
    /// When no node answers, or none serves the slot.
    ///
    /// ```no_run
    /// # let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// // Keys with one hash tag share a slot, so a node.
    /// assert_eq!(cluster.owner("{a}:1").unwrap(), cluster.owner("{a}:2").unwrap());
    /// ```
    pub fn owner(&self, key: &str) -> Result<usize, String> {
        let mut last = "no node is running".to_owned();
        for node in self.nodes.iter().filter(|n| n.pid().is_some()) {
            let found = node.command(&["CLUSTER", "KEYSLOT", key]).and_then(|slot| {
                let slot = slot.parse::<u16>().map_err(|_| format!("a slot that is not a number: {slot}"))?;
                let table = node.command(&["CLUSTER", "NODES"])?;
                bus_port_serving(&table, slot)
                    .and_then(|bus| self.nodes.iter().position(|n| n.bus_port() == Some(bus)))
                    .ok_or_else(|| format!("no node of ours serves slot {slot}"))
            });
            match found {
                Ok(i) => return Ok(i),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Runs one command on every running node: `SCRIPT FLUSH`, `CONFIG SET ...`.
    ///
    /// # Errors
    ///
    /// The first node's error.
    ///
    /// ```no_run
    /// # let cluster = llm_retry_testkit::redis_cluster::RedisCluster::start().unwrap().unwrap();
    /// assert_eq!(cluster.command_all(&["SCRIPT", "FLUSH"]).unwrap(), ["OK"; 3]);
    /// ```
    pub fn command_all(&self, args: &[&str]) -> Result<Vec<String>, String> {
        self.nodes.iter().filter(|n| n.pid().is_some()).map(|n| n.command(args)).collect()
    }
}

/// The bus port of the node that serves `slot`, by `CLUSTER NODES`' lines (`<id>
/// <ip>:<port>@<bus port>[,<host>] <flags> <master> <ping> <pong> <epoch> <link> <slot or
/// range>...`): the bus port tells our nodes apart, with TLS or without.
fn bus_port_serving(table: &str, slot: u16) -> Option<u16> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let serves = fields.get(8..)?.iter().any(|range| {
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            matches!((first.parse::<u16>(), last.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
        });
        let bus = fields.get(1)?.split_once('@')?.1.split(',').next()?.parse::<u16>().ok()?;
        serves.then_some(bus)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_server::skip_notice;

    fn cluster(test: &str) -> Option<RedisCluster> {
        let cluster = RedisCluster::start().expect("a cluster");
        if cluster.is_none() {
            skip_notice(test);
        }
        cluster
    }

    #[test]
    fn it_forms_routes_and_survives_a_restart() {
        let Some(mut cluster) = cluster("it_forms_routes_and_survives_a_restart") else { return };
        // Hash tags 'a', 'b' and 'c' fall in slots of nodes 2, 0 and 1.
        let owners: Vec<usize> = ["{a}", "{b}", "{c}"].iter().map(|k| cluster.owner(k).unwrap()).collect();
        assert_eq!(owners, [2, 0, 1]);
        let node = &cluster.nodes()[owners[0]];
        assert_eq!(node.command(&["SET", "{a}", "1"]).unwrap(), "OK");
        let moved = cluster.nodes()[owners[1]].command(&["SET", "{a}", "1"]).unwrap_err();
        assert!(moved.starts_with("MOVED"), "{moved}");
        assert_eq!(cluster.command_all(&["SCRIPT", "FLUSH"]).unwrap(), ["OK"; 3]);

        cluster.node_mut(2).unwrap().kill().unwrap();
        assert_eq!(cluster.owner("{a}").unwrap(), 2, "a killed node still owns its slots");
        cluster.node_mut(2).unwrap().restart().unwrap();
        cluster.wait_until_ok().unwrap();
        assert_eq!(cluster.owner("{a}").unwrap(), 2);
        assert!(cluster.node_mut(3).is_none());
    }

    #[test]
    fn dropping_it_ends_every_node() {
        let Some(cluster) = cluster("dropping_it_ends_every_node") else { return };
        let dirs: Vec<_> = cluster.nodes().iter().map(|n| n.dir().to_owned()).collect();
        let addrs: Vec<_> = cluster.nodes().iter().map(RedisServer::addr).collect();
        assert!(dirs.iter().all(|d| d.join("nodes.conf").exists()));
        drop(cluster);
        assert!(dirs.iter().all(|d| !d.exists()));
        for addr in addrs {
            assert!(crate::redis_server::command_at(addr, &["PING"], Duration::from_millis(200)).is_err());
        }
    }

    #[test]
    fn cluster_nodes_lines_are_read() {
        let table = "\
            e1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
            e2 127.0.0.1:7001@17001,host.example master - 0 0 2 connected 5461-10922 [5462->-e3]\n\
            garbage\n\
            e3 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected 10923 10925-16383\n";
        assert_eq!(bus_port_serving(table, 0), Some(17000));
        assert_eq!(bus_port_serving(table, 5461), Some(17001));
        assert_eq!(bus_port_serving(table, 10923), Some(17002));
        assert_eq!(bus_port_serving(table, 10924), None);
        assert_eq!(bus_port_serving(table, 16383), Some(17002));
        assert_eq!(bus_port_serving("", 0), None);
        assert_eq!(bus_port_serving("x 127.0.0.1:1@nope m - 0 0 1 connected 0-16383", 0), None);
    }
}
