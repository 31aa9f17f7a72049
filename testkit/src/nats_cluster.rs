//! Three JetStream `nats-server`s routed into one cluster on loopback ports, for fail-over
//! tests of replicated (R3) streams.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::nats::{NatsOptions, NatsServer};
use crate::{free_port, poll_until};

/// Nodes in a cluster: three, the smallest size where one may fail and two still elect.
const NODES: usize = 3;

/// The cluster name, the same as in `nats/cluster/`.
const CLUSTER_NAME: &str = "smart-support";

/// How long the nodes may take to elect a JetStream meta leader.
const META_LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A running three-node `nats-server` cluster with JetStream, each node on free 127.0.0.1
/// client, cluster (route) and monitoring ports with its own store in a temporary directory.
///
/// Node `i` is named `smart-support-{i + 1}`, like `nats/cluster/node-{1,2,3}.conf`. Each
/// node is a [`NatsServer`], so dropping the cluster kills every node and removes its
/// directory, also while a test panics.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    name: String,
    monitor_port: u16,
    server: NatsServer,
}

impl NatsCluster {
    /// Starts three nodes with `sync_interval: always` (as `nats/cluster/` does), routed to
    /// each other; returns once every node sees a JetStream meta leader and the leader sees
    /// both other peers as current.
    ///
    /// # Panics
    ///
    /// If `nats-server` is not on `PATH`, a node does not become ready within 15 s, or no meta
    /// leader is elected within 30 s.
    pub fn start() -> NatsCluster {
        // `free_port` never hands out the same port twice while this process runs.
        let ports: Vec<u16> = (0..2 * NODES).map(|_| free_port()).collect();
        let (route_ports, monitor_ports) = ports.split_at(NODES);
        let options = NatsOptions {
            sync_always: true,
            ..NatsOptions::default()
        };
        let nodes = (0..NODES)
            .map(|i| {
                let name = format!("{CLUSTER_NAME}-{}", i + 1);
                let extra = member_config(&name, route_ports[i], monitor_ports[i], route_ports);
                Node {
                    server: NatsServer::start_configured(&options, &extra),
                    name,
                    monitor_port: monitor_ports[i],
                }
            })
            .collect();
        let cluster = NatsCluster { nodes };
        cluster.wait_for_meta(
            "the cluster has a JetStream meta leader with every peer current",
            || cluster.meta_is_whole(),
        );
        cluster
    }

    /// The client URLs of every node, comma-separated (what `NATS_URL` takes for a cluster).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| node.server.url())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server name of node `node` (`smart-support-1` for node 0).
    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    /// Kills node `node` with SIGKILL and waits until it is gone; its store is kept.
    ///
    /// # Panics
    ///
    /// Like [`NatsServer::kill`].
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].server.kill();
    }

    /// Starts node `node` again on the same ports and store (after [`NatsCluster::kill`]);
    /// returns once it is ready and sees a JetStream meta leader again.
    ///
    /// # Panics
    ///
    /// Like [`NatsServer::restart`], or if the node sees no meta leader within 30 s.
    pub fn restart(&mut self, node: usize) {
        self.nodes[node].server.restart();
        let port = self.nodes[node].monitor_port;
        self.wait_for_meta(
            &format!("{} sees a JetStream meta leader", self.name(node)),
            || meta_leader(port).is_some(),
        );
    }

    /// Waits up to [`META_LEADER_TIMEOUT`] until `cond` holds; on timeout, panics with `what`
    /// and the end of every node's log, which says why no leader was elected.
    fn wait_for_meta(&self, what: &str, cond: impl FnMut() -> bool) {
        if !poll_until(META_LEADER_TIMEOUT, cond) {
            let mut logs = String::new();
            for node in &self.nodes {
                let _ = write!(logs, "\n--- {} ---\n{}", node.name, node.server.log_tail());
            }
            panic!(
                "timed out after {META_LEADER_TIMEOUT:?} waiting until {what}; the nodes' logs end:{logs}"
            );
        }
    }

    /// The node that leads stream `stream` now, as a running node reports it through its
    /// monitoring endpoint (`/jsz`, the same `cluster.leader` as the JetStream API's
    /// `STREAM.INFO`); `None` while there is no leader (an election) or no such stream.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let leader = self
            .nodes
            .iter()
            .filter_map(|node| stream_cluster(node.monitor_port, stream))
            .find_map(|cluster| cluster["leader"].as_str().map(str::to_owned))?;
        self.nodes.iter().position(|node| node.name == leader)
    }

    /// Whether stream `stream` has a leader that sees every other replica as current (caught
    /// up), e.g. once a restarted node has synced what it missed.
    pub fn stream_is_current(&self, stream: &str) -> bool {
        let Some(leader) = self.stream_leader(stream) else {
            return false;
        };
        let Some(cluster) = stream_cluster(self.nodes[leader].monitor_port, stream) else {
            return false;
        };
        let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
        replicas.len() == NODES - 1 && replicas.iter().all(|peer| peer["current"] == true)
    }

    /// Whether every node sees a meta leader and that leader sees both other peers current.
    fn meta_is_whole(&self) -> bool {
        let leaders: BTreeSet<String> = self
            .nodes
            .iter()
            .filter_map(|node| meta_leader(node.monitor_port))
            .collect();
        let Some(leader) = leaders.first().filter(|_| leaders.len() == 1) else {
            return false;
        };
        let Some(node) = self.nodes.iter().find(|node| &node.name == leader) else {
            return false;
        };
        let Some(jsz) = monitor(node.monitor_port, "/jsz") else {
            return false;
        };
        let peers = jsz["meta_cluster"]["replicas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        self.nodes
            .iter()
            .all(|node| meta_leader(node.monitor_port).is_some())
            && peers.len() == NODES - 1
            && peers.iter().all(|peer| peer["current"] == true)
    }
}

/// The config lines a cluster member adds to [`NatsServer`]'s generated file.
fn member_config(name: &str, route_port: u16, monitor_port: u16, route_ports: &[u16]) -> String {
    let mut config = format!("server_name: {name}\nhttp: 127.0.0.1:{monitor_port}\n");
    let _ = writeln!(config, "cluster {{\n  name: {CLUSTER_NAME}");
    let _ = writeln!(config, "  listen: 127.0.0.1:{route_port}");
    let routes: Vec<String> = route_ports
        .iter()
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect();
    let _ = writeln!(config, "  routes: [{}]\n}}", routes.join(", "));
    config
}

/// The meta leader a node reports, if any (and if the node answers).
fn meta_leader(monitor_port: u16) -> Option<String> {
    let jsz = monitor(monitor_port, "/jsz")?;
    let leader = jsz["meta_cluster"]["leader"].as_str()?;
    (!leader.is_empty()).then(|| leader.to_owned())
}

/// The `cluster` member of a stream's details as a node reports them.
fn stream_cluster(monitor_port: u16, stream: &str) -> Option<Value> {
    let jsz = monitor(monitor_port, "/jsz?accounts=true&streams=true")?;
    jsz["account_details"]
        .as_array()?
        .iter()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .find(|detail| detail["name"] == stream)
        .map(|detail| detail["cluster"].clone())
}

/// GETs `path` from a node's monitoring port; `None` if the node does not answer with JSON.
/// Plain HTTP/1.0 over a socket: the server closes the connection after the body.
fn monitor(port: u16, path: &str) -> Option<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_names_itself_listens_for_routes_and_routes_to_every_node() {
        let config = member_config("smart-support-2", 6002, 8002, &[6001, 6002, 6003]);
        assert_eq!(
            config,
            "server_name: smart-support-2\nhttp: 127.0.0.1:8002\ncluster {\n  \
             name: smart-support\n  listen: 127.0.0.1:6002\n  routes: \
             [nats-route://127.0.0.1:6001, nats-route://127.0.0.1:6002, \
             nats-route://127.0.0.1:6003]\n}\n"
        );
    }

    #[test]
    fn the_production_configs_are_valid_and_share_the_test_clusters_settings() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nats/cluster");
        let shared = std::fs::read_to_string(dir.join("cluster.conf")).unwrap();
        assert!(
            shared.contains(&format!("name: {CLUSTER_NAME}\n")),
            "{shared}"
        );
        assert!(shared.contains("sync_interval: always\n"), "{shared}");
        assert!(shared.contains("include ../users.conf\n"), "{shared}");
        for n in 1..=NODES {
            let node = dir.join(format!("node-{n}.conf"));
            let text = std::fs::read_to_string(&node).unwrap();
            assert!(
                text.contains(&format!("server_name: {CLUSTER_NAME}-{n}\n")),
                "{text}"
            );
            let output = std::process::Command::new(crate::nats::nats_server_binary())
                .envs(crate::nats::nats_password_env())
                .arg("-t")
                .arg("-c")
                .arg(&node)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}: {}",
                node.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
