//! The tokio driver: one UDP socket, one task running the [`Dht`] state machine,
//! and a cloneable handle whose async methods send it commands.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bt_meta::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::compact::NodeInfo;
use crate::dht::{Dht, DhtConfig, Event, PeerPort, RequestId, Stats};
use crate::error::{Error, Result};
use crate::krpc::MAX_PACKET_IN_LEN;
use crate::lookup::LookupStats;
use crate::node_id::NodeId;
use crate::nodes_file;

/// The public bootstrap routers, for users; tests pass their own loopback nodes.
pub const DEFAULT_BOOTSTRAP: &[&str] = &[
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// How long one bootstrap host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an announce did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceReport {
    /// Peers the `get_peers` part found.
    pub peers: Vec<SocketAddr>,
    /// Counters of the `get_peers` part.
    pub lookup: LookupStats,
    /// Nodes that acknowledged our `announce_peer`.
    pub stored_on: usize,
    /// Nodes we sent `announce_peer` to.
    pub tried: usize,
}

enum Update {
    Peers(Vec<SocketAddr>),
    Done(LookupStats),
}

/// Peers of one `get_peers` lookup as they are found.
pub struct PeerStream {
    rx: mpsc::UnboundedReceiver<Update>,
    stats: Option<LookupStats>,
}

impl PeerStream {
    /// The next batch of new peers; `None` once the lookup is over (or the node shut down).
    pub async fn next(&mut self) -> Option<Vec<SocketAddr>> {
        if self.stats.is_some() {
            return None;
        }
        match self.rx.recv().await? {
            Update::Peers(p) => Some(p),
            Update::Done(stats) => {
                self.stats = Some(stats);
                None
            }
        }
    }

    /// The lookup's counters, once `next` has returned `None` after it ended.
    pub fn stats(&self) -> Option<LookupStats> {
        self.stats
    }

    /// Waits for the end and returns every peer and the lookup's counters.
    pub async fn finish(mut self) -> Result<(Vec<SocketAddr>, LookupStats)> {
        let mut all = Vec::new();
        while let Some(batch) = self.next().await {
            all.extend(batch);
        }
        let stats = self.stats.ok_or(Error::Shutdown)?;
        Ok((all, stats))
    }
}

enum Command {
    Bootstrap(Vec<SocketAddr>, oneshot::Sender<LookupStats>),
    FindNode(NodeId, oneshot::Sender<Vec<NodeInfo>>),
    GetPeers(InfoHash, mpsc::UnboundedSender<Update>),
    Announce(InfoHash, PeerPort, oneshot::Sender<AnnounceReport>),
    Ping(SocketAddr, oneshot::Sender<Option<NodeId>>),
    AddNode(SocketAddr),
    Snapshot(oneshot::Sender<Vec<NodeInfo>>),
    Load(Vec<NodeInfo>, oneshot::Sender<usize>),
    Stats(oneshot::Sender<(Stats, usize)>),
    Shutdown(oneshot::Sender<()>),
}

enum Waiter {
    Bootstrap(oneshot::Sender<LookupStats>),
    FindNode(oneshot::Sender<Vec<NodeInfo>>),
    Peers(mpsc::UnboundedSender<Update>),
    Announce {
        peers: Vec<SocketAddr>,
        lookup: LookupStats,
        reply: oneshot::Sender<AnnounceReport>,
    },
    Ping(oneshot::Sender<Option<NodeId>>),
}

/// A running DHT node on one UDP socket. Cheap to clone; the task stops on
/// [`DhtNode::shutdown`] or when every handle is dropped.
#[derive(Clone, Debug)]
pub struct DhtNode {
    tx: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    id: NodeId,
}

impl DhtNode {
    /// Binds `addr` (the engine passes its listen address, so DHT and peers share
    /// the port) and starts the node's task. The config's `local_port`, `ipv4`
    /// and `ipv6` are set from the bound socket.
    pub async fn bind(addr: SocketAddr, mut config: DhtConfig) -> Result<DhtNode> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| Error::Io { addr, source })?;
        let local_addr = socket
            .local_addr()
            .map_err(|source| Error::Io { addr, source })?;
        config.local_port = local_addr.port();
        match local_addr.ip() {
            IpAddr::V4(_) => config.ipv6 = false,
            IpAddr::V6(ip) if !ip.is_unspecified() => config.ipv4 = false,
            IpAddr::V6(_) => {} // dual-stack
        }
        let dht = Dht::new(config, Instant::now());
        let id = dht.id();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(run(socket, local_addr, dht, rx));
        Ok(DhtNode { tx, local_addr, id })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)
    }

    /// Resolves `hosts` (`host:port` strings) and joins the network through them
    /// and the nodes already in the table; returns when the self-lookup ends.
    /// Fails only if no host resolved and the table is empty; a result with
    /// `responses == 0` means nobody answered (try again later).
    pub async fn bootstrap<S: AsRef<str>>(&self, hosts: &[S]) -> Result<LookupStats> {
        let mut addrs = Vec::new();
        let mut first_error = None;
        for host in hosts {
            let host = host.as_ref();
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(host)).await {
                Ok(Ok(found)) => addrs.extend(found),
                Ok(Err(e)) => {
                    first_error.get_or_insert(Error::Resolve {
                        host: host.to_string(),
                        reason: e.to_string(),
                    });
                }
                Err(_) => {
                    first_error.get_or_insert(Error::Resolve {
                        host: host.to_string(),
                        reason: format!("no answer within {RESOLVE_TIMEOUT:?}"),
                    });
                }
            }
        }
        addrs.retain(|a| self.local_addr.is_ipv6() || a.is_ipv4());
        if addrs.is_empty() {
            if let Some(e) = first_error {
                if self.routing_table_snapshot().await?.is_empty() {
                    return Err(e);
                }
            }
        }
        self.bootstrap_addrs(addrs).await
    }

    /// [`DhtNode::bootstrap`] with addresses instead of host names.
    pub async fn bootstrap_addrs(&self, addrs: Vec<SocketAddr>) -> Result<LookupStats> {
        self.ask(|r| Command::Bootstrap(addrs, r)).await
    }

    /// The closest nodes to `target` that answered.
    pub async fn find_node(&self, target: NodeId) -> Result<Vec<NodeInfo>> {
        self.ask(|r| Command::FindNode(target, r)).await
    }

    /// Peers for `info_hash`, as they are found. Dropping the stream cancels the lookup.
    pub async fn get_peers_stream(&self, info_hash: InfoHash) -> Result<PeerStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.tx
            .send(Command::GetPeers(info_hash, tx))
            .await
            .map_err(|_| Error::Shutdown)?;
        Ok(PeerStream { rx, stats: None })
    }

    /// Every peer a full `get_peers` lookup finds for `info_hash`.
    pub async fn get_peers(&self, info_hash: InfoHash) -> Result<Vec<SocketAddr>> {
        let (peers, _) = self.get_peers_stream(info_hash).await?.finish().await?;
        Ok(peers)
    }

    /// Announces `info_hash` on `port` to the closest nodes (see [`Dht::announce`]).
    pub async fn announce(&self, info_hash: InfoHash, port: PeerPort) -> Result<AnnounceReport> {
        self.ask(|r| Command::Announce(info_hash, port, r)).await
    }

    /// Pings `addr` and returns its id.
    pub async fn ping(&self, addr: SocketAddr) -> Result<NodeId> {
        self.ask(|r| Command::Ping(addr, r))
            .await?
            .ok_or(Error::Timeout { addr })
    }

    /// A node to try (from a peer's `port` message): pinged, kept if it answers.
    pub async fn add_node(&self, addr: SocketAddr) -> Result<()> {
        self.tx
            .send(Command::AddNode(addr))
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// The routing table's nodes worth keeping (good ones first).
    pub async fn routing_table_snapshot(&self) -> Result<Vec<NodeInfo>> {
        self.ask(Command::Snapshot).await
    }

    /// Counters, and the number of nodes in the routing table.
    pub async fn stats(&self) -> Result<(Stats, usize)> {
        self.ask(Command::Stats).await
    }

    /// Writes the routing table to `path` (temp file, then rename). Returns the node count.
    pub async fn save_nodes(&self, path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref();
        let nodes = self.routing_table_snapshot().await?;
        let bytes = nodes_file::encode(&nodes);
        let io = |source| Error::NodesFileIo {
            path: path.to_path_buf(),
            source,
        };
        let tmp = temp_path(path);
        tokio::fs::write(&tmp, &bytes).await.map_err(io)?;
        if let Err(e) = tokio::fs::rename(&tmp, path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(nodes.len())
    }

    /// Reads nodes saved by [`DhtNode::save_nodes`] into the table (questionable
    /// until they answer). Returns how many were added.
    pub async fn load_nodes(&self, path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref();
        let io = |source| Error::NodesFileIo {
            path: path.to_path_buf(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        if len > nodes_file::MAX_NODES_FILE_LEN as u64 {
            return Err(Error::NodesFileInvalid {
                path: path.to_path_buf(),
                reason: format!(
                    "file of {len} bytes exceeds limit of {}",
                    nodes_file::MAX_NODES_FILE_LEN
                ),
            });
        }
        let bytes = tokio::fs::read(path).await.map_err(io)?;
        let nodes = nodes_file::decode(&bytes, path)?;
        self.ask(|r| Command::Load(nodes, r)).await
    }

    /// Stops the task and closes the socket; other handles then get [`Error::Shutdown`].
    pub async fn shutdown(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(ack)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// `dir/name.tmp` beside `path`, so the rename stays on one file system.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// An IPv4 destination as seen by an IPv6 (dual-stack) socket.
fn for_socket(to: SocketAddr, local: SocketAddr) -> SocketAddr {
    match (to.ip(), local.is_ipv6()) {
        (IpAddr::V4(v4), true) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()),
        _ => to,
    }
}

async fn run(socket: UdpSocket, local: SocketAddr, mut dht: Dht, mut rx: mpsc::Receiver<Command>) {
    let mut buf = vec![0u8; MAX_PACKET_IN_LEN + 1];
    let mut waiters: HashMap<RequestId, Waiter> = HashMap::new();
    let mut shutdown_ack = None;
    loop {
        while let Some((to, bytes)) = dht.poll_transmit() {
            if let Err(e) = socket.send_to(&bytes, for_socket(to, local)).await {
                tracing::debug!(%to, error = %e, "dht send failed");
            }
        }
        while let Some(event) = dht.poll_event() {
            dispatch(&mut dht, &mut waiters, event);
        }
        let deadline = dht
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    // A datagram longer than the buffer arrives cut to its length,
                    // which the decoder rejects as too large.
                    let packet = buf.get(..n).unwrap_or_default();
                    dht.handle_packet(Instant::now(), from, packet);
                }
                Err(e) => tracing::debug!(error = %e, "dht receive failed"),
            },
            command = rx.recv() => match command {
                None => break,
                Some(Command::Shutdown(ack)) => {
                    shutdown_ack = Some(ack);
                    break;
                }
                Some(command) => execute(&mut dht, &mut waiters, command),
            },
            () = tokio::time::sleep_until(deadline.into()) => dht.handle_timeout(Instant::now()),
        }
    }
    drop(socket);
    if let Some(ack) = shutdown_ack {
        let _ = ack.send(());
    }
}

fn execute(dht: &mut Dht, waiters: &mut HashMap<RequestId, Waiter>, command: Command) {
    let now = Instant::now();
    match command {
        Command::Bootstrap(addrs, reply) => {
            let r = dht.bootstrap(now, &addrs);
            waiters.insert(r, Waiter::Bootstrap(reply));
        }
        Command::FindNode(target, reply) => {
            let r = dht.find_node(now, target);
            waiters.insert(r, Waiter::FindNode(reply));
        }
        Command::GetPeers(info_hash, tx) => {
            let r = dht.get_peers(now, info_hash);
            waiters.insert(r, Waiter::Peers(tx));
        }
        Command::Announce(info_hash, port, reply) => {
            let r = dht.announce(now, info_hash, port);
            waiters.insert(
                r,
                Waiter::Announce {
                    peers: Vec::new(),
                    lookup: LookupStats::default(),
                    reply,
                },
            );
        }
        Command::Ping(addr, reply) => {
            let r = dht.ping(now, addr);
            waiters.insert(r, Waiter::Ping(reply));
        }
        Command::AddNode(addr) => dht.add_node(now, addr),
        Command::Snapshot(reply) => {
            let _ = reply.send(dht.routing_table_snapshot(now));
        }
        Command::Load(nodes, reply) => {
            let _ = reply.send(dht.load_nodes(now, nodes));
        }
        Command::Stats(reply) => {
            let _ = reply.send((dht.stats(), dht.routing_table().len()));
        }
        Command::Shutdown(_) => {} // handled by the loop
    }
}

fn dispatch(dht: &mut Dht, waiters: &mut HashMap<RequestId, Waiter>, event: Event) {
    match event {
        Event::PeersFound { request, peers, .. } => {
            let gone = match waiters.get_mut(&request) {
                Some(Waiter::Peers(tx)) => tx.send(Update::Peers(peers)).is_err(),
                Some(Waiter::Announce { peers: all, .. }) => {
                    all.extend(peers);
                    false
                }
                _ => false,
            };
            if gone {
                // The stream was dropped: nobody wants the rest.
                waiters.remove(&request);
                dht.cancel(request);
            }
        }
        Event::LookupDone {
            request,
            stats,
            closest,
            ..
        } => match waiters.remove(&request) {
            Some(Waiter::Bootstrap(reply)) => {
                let _ = reply.send(stats);
            }
            Some(Waiter::FindNode(reply)) => {
                let _ = reply.send(closest);
            }
            Some(Waiter::Peers(tx)) => {
                let _ = tx.send(Update::Done(stats));
            }
            Some(Waiter::Announce { peers, reply, .. }) => {
                waiters.insert(
                    request,
                    Waiter::Announce {
                        peers,
                        lookup: stats,
                        reply,
                    },
                );
            }
            Some(other) => {
                waiters.insert(request, other);
            }
            None => {}
        },
        Event::AnnounceDone {
            request,
            stored_on,
            tried,
            ..
        } => {
            if let Some(Waiter::Announce {
                peers,
                lookup,
                reply,
            }) = waiters.remove(&request)
            {
                let _ = reply.send(AnnounceReport {
                    peers,
                    lookup,
                    stored_on,
                    tried,
                });
            }
        }
        Event::PingDone { request, id, .. } => {
            if let Some(Waiter::Ping(reply)) = waiters.remove(&request) {
                let _ = reply.send(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_sits_beside_the_target() {
        assert_eq!(
            temp_path(Path::new("/a/b/dht.nodes")),
            PathBuf::from("/a/b/dht.nodes.tmp")
        );
    }

    #[test]
    fn v4_destinations_are_mapped_for_v6_sockets() {
        let to: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let v6: SocketAddr = "[::]:1".parse().unwrap();
        let v4: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert_eq!(for_socket(to, v6), "[::ffff:127.0.0.1]:5".parse().unwrap());
        assert_eq!(for_socket(to, v4), to);
    }
}
