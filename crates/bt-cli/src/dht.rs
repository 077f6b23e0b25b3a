//! The DHT in the client, and `bt dht` debugging tools.
//!
//! `bt download` and `bt seed` have their session run a DHT node unless `--no-dht` is
//! given ([`DhtArgs::settings`]; the session does the work, see
//! `bt_engine::sources::dht`):
//!
//! - its UDP socket uses the address and port of `--listen` (the TCP listening port);
//! - it joins the network through `--dht-bootstrap HOST:PORT` nodes (repeatable), which
//!   replace the default public routers. The public routers are used only when no
//!   `--dht-bootstrap` is given *and* `--listen` is not a loopback address: a client
//!   bound to 127.0.0.0/8 never contacts them (so tests on loopback cannot leak traffic);
//! - its routing table is saved on shutdown to `<DIR>/.bt/dht.nodes` (`DIR` being the
//!   download folder of `bt download -o DIR`, or the data folder of `bt seed`) and loaded
//!   from there at start, so a restart rejoins without the routers;
//! - each torrent is announced and looked up through it, except private torrents
//!   (BEP 27), which never use the DHT.
//!
//! `bt dht ping ADDR` and `bt dht get-peers INFOHASH --bootstrap ADDR...` query the DHT
//! directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bt_dht::{DhtConfig, DhtNode};
use bt_engine::sources::dht::DhtSettings;
use bt_meta::InfoHash;

/// Longest a `bt dht` command waits for its answer.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// DHT options of `bt download` and `bt seed`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct DhtArgs {
    /// Join the DHT through this node instead of the public routers; repeat for more.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// Do not use the DHT.
    #[arg(long, conflicts_with = "dht_bootstrap")]
    pub no_dht: bool,
}

impl DhtArgs {
    /// The session's DHT settings for a client working in `dir`: `None` with `--no-dht`.
    pub fn settings(&self, dir: &Path) -> Option<DhtSettings> {
        (!self.no_dht).then(|| DhtSettings {
            bootstrap: (!self.dht_bootstrap.is_empty()).then(|| self.dht_bootstrap.clone()),
            nodes_file: Some(nodes_file(dir)),
            ..DhtSettings::default()
        })
    }
}

/// Where the routing table of a client working in `dir` is kept.
pub fn nodes_file(dir: &Path) -> PathBuf {
    dir.join(bt_engine::storage::STATE_DIR).join("dht.nodes")
}

/// Arguments of `bt dht`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DhtCommand,
}

/// The `bt dht` tools.
#[derive(clap::Subcommand)]
enum DhtCommand {
    /// Ping a DHT node and print its id.
    Ping {
        /// The node (IP:PORT).
        addr: SocketAddr,
        /// Our UDP address.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0")]
        listen: SocketAddr,
    },
    /// Look up the peers of a torrent, printing each as IP:PORT.
    GetPeers {
        /// The info-hash (40 hex characters).
        info_hash: String,
        /// A node to join the DHT through (HOST:PORT); repeat for more.
        #[arg(long, value_name = "HOST:PORT", required = true)]
        bootstrap: Vec<String>,
        /// Our UDP address.
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:0")]
        listen: SocketAddr,
    },
}

/// Runs `bt dht`.
pub fn run(args: Args) -> Result<()> {
    crate::download::runtime()?.block_on(async move {
        match args.command {
            DhtCommand::Ping { addr, listen } => ping(addr, listen).await,
            DhtCommand::GetPeers {
                info_hash,
                bootstrap,
                listen,
            } => get_peers(&info_hash, &bootstrap, listen).await,
        }
    })
}

async fn bind(listen: SocketAddr) -> Result<DhtNode> {
    DhtNode::bind(listen, DhtConfig::default())
        .await
        .with_context(|| format!("cannot bind UDP {listen}"))
}

async fn ping(addr: SocketAddr, listen: SocketAddr) -> Result<()> {
    let id = ping_id(addr, listen).await?;
    println!("{addr}: node id {}", hex::encode(id));
    Ok(())
}

/// The id of the node at `addr`.
async fn ping_id(addr: SocketAddr, listen: SocketAddr) -> Result<[u8; 20]> {
    let node = bind(listen).await?;
    let result = tokio::time::timeout(TOOL_TIMEOUT, node.ping(addr)).await;
    node.shutdown().await;
    let id = result
        .map_err(|_| anyhow::anyhow!("{addr}: no answer within {TOOL_TIMEOUT:?}"))?
        .with_context(|| format!("{addr}: no answer"))?;
    Ok(id.0)
}

async fn get_peers(info_hash: &str, bootstrap: &[String], listen: SocketAddr) -> Result<()> {
    let (peers, stats) = lookup(info_hash, bootstrap, listen, |peer| println!("{peer}")).await?;
    eprintln!("{} peers ({stats:?})", peers.len());
    Ok(())
}

/// Joins through `bootstrap` and looks `info_hash` up; `found` sees each peer as it comes.
async fn lookup(
    info_hash: &str,
    bootstrap: &[String],
    listen: SocketAddr,
    mut found: impl FnMut(SocketAddr),
) -> Result<(Vec<SocketAddr>, Option<bt_dht::LookupStats>)> {
    let Some(info_hash) = InfoHash::from_hex(info_hash) else {
        bail!("{info_hash:?} is not a 40-character hex info-hash");
    };
    let node = bind(listen).await?;
    let work = async {
        node.bootstrap(bootstrap)
            .await
            .context("bootstrap failed")?;
        let mut stream = node.get_peers_stream(info_hash).await?;
        let mut peers = Vec::new();
        while let Some(batch) = stream.next().await {
            for peer in batch {
                found(peer);
                peers.push(peer);
            }
        }
        Ok::<_, anyhow::Error>((peers, stream.stats()))
    };
    let result = tokio::time::timeout(TOOL_TIMEOUT, work).await;
    node.shutdown().await;
    result.map_err(|_| anyhow::anyhow!("lookup did not finish within {TOOL_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_dht::PeerPort;
    use bt_engine::{Session, SessionConfig};

    const LOOPBACK_ANY: &str = "127.0.0.1:0";

    async fn node() -> DhtNode {
        DhtNode::bind(LOOPBACK_ANY.parse().unwrap(), DhtConfig::default())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn ping_and_get_peers_against_loopback_nodes() {
        let (a, b) = (node().await, node().await);
        b.bootstrap_addrs(vec![a.local_addr()]).await.unwrap();
        let hash = "00112233445566778899aabbccddeeff00112233";
        let report = b
            .announce(InfoHash::from_hex(hash).unwrap(), PeerPort::Port(7777))
            .await
            .unwrap();
        assert_eq!(report.stored_on, 1);
        let listen = LOOPBACK_ANY.parse().unwrap();
        assert_eq!(ping_id(a.local_addr(), listen).await.unwrap(), a.id().0);
        let (peers, _) = lookup(hash, &[a.local_addr().to_string()], listen, |_| {})
            .await
            .unwrap();
        assert_eq!(peers, vec![SocketAddr::from(([127, 0, 0, 1], 7777))]);
        assert!(lookup("xyz", &[a.local_addr().to_string()], listen, |_| {})
            .await
            .is_err());
        for n in [a, b] {
            n.shutdown().await;
        }
    }

    async fn session_with(args: &DhtArgs, dir: &Path) -> Session {
        Session::new(SessionConfig {
            listen_addr: LOOPBACK_ANY.parse().unwrap(),
            dht: args.settings(dir),
            ..SessionConfig::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_routing_table_is_saved_on_shutdown_and_loaded_at_start() {
        let other = node().await;
        let dir = tempfile::tempdir().unwrap();
        let args = DhtArgs {
            dht_bootstrap: vec![other.local_addr().to_string()],
            no_dht: false,
        };
        let session = session_with(&args, dir.path()).await;
        let node = session.dht().unwrap().clone();
        assert_eq!(node.local_addr(), session.local_addr(), "UDP beside TCP");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.routing_table_snapshot().await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "never bootstrapped");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        session.shutdown().await;
        assert!(nodes_file(dir.path()).is_file());
        // Started again on loopback without --dht-bootstrap: no routers, but the saved
        // table.
        let again = session_with(&DhtArgs::default(), dir.path()).await;
        let nodes = again.dht().unwrap().routing_table_snapshot().await.unwrap();
        assert!(
            nodes.iter().any(|n| n.addr == other.local_addr()),
            "{nodes:?}"
        );
        again.shutdown().await;
        let off = DhtArgs {
            dht_bootstrap: vec![],
            no_dht: true,
        };
        let without = session_with(&off, dir.path()).await;
        assert!(without.dht().is_none());
        without.shutdown().await;
        other.shutdown().await;
    }
}
