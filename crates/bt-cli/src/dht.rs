//! The DHT in the client, and `bt dht` debugging tools.
//!
//! `bt download` and `bt seed` run a DHT node ([`Dht`]) unless `--no-dht` is given:
//!
//! - its UDP socket uses the address and port of `--listen` (the TCP listening port);
//! - it joins the network through `--dht-bootstrap HOST:PORT` nodes (repeatable), which
//!   replace the default public routers ([`bt_dht::DEFAULT_BOOTSTRAP`]). The public
//!   routers are used only when no `--dht-bootstrap` is given *and* `--listen` is not a
//!   loopback address: a client bound to 127.0.0.0/8 never contacts them (so tests on
//!   loopback cannot leak traffic);
//! - its routing table is saved on shutdown to `<DIR>/.bt/dht.nodes` (`DIR` being the
//!   download folder of `bt download -o DIR`, or the data folder of `bt seed`) and loaded
//!   from there at start, so a restart rejoins without the routers;
//! - each torrent is announced and looked up through it ([`bt_engine::dht_peers`]),
//!   except private torrents (BEP 27), which never use the DHT.
//!
//! `bt dht ping ADDR` and `bt dht get-peers INFOHASH --bootstrap ADDR...` query the DHT
//! directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bt_dht::{DhtConfig, DhtNode, DEFAULT_BOOTSTRAP};
use bt_engine::dht_peers::{self, DhtPeersConfig, DhtPeersHandle};
use bt_engine::{Session, TorrentHandle};
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

/// Where the routing table of a client working in `dir` is kept.
pub fn nodes_file(dir: &Path) -> PathBuf {
    dir.join(".bt").join("dht.nodes")
}

/// The client's DHT node.
pub struct Dht {
    node: DhtNode,
    nodes_file: PathBuf,
    port: u16,
    trackers: Vec<DhtPeersHandle>,
}

impl Dht {
    /// Starts the DHT on the session's listening address unless `--no-dht`, and attaches
    /// it to the session (peers' `port` messages feed it); the routing table lives under
    /// `dir`. Bootstrapping runs in the background.
    pub async fn start(args: &DhtArgs, session: &Session, dir: &Path) -> Result<Option<Dht>> {
        if args.no_dht {
            return Ok(None);
        }
        let listen = session.local_addr();
        let node = DhtNode::bind(listen, DhtConfig::default())
            .await
            .with_context(|| format!("cannot start the DHT on UDP {listen}"))?;
        let nodes_file = nodes_file(dir);
        match node.load_nodes(&nodes_file).await {
            Ok(n) => tracing::info!(nodes = n, file = %nodes_file.display(), "dht nodes loaded"),
            Err(e) => tracing::debug!(error = %e, "no saved dht nodes"),
        }
        let hosts: Vec<String> = if !args.dht_bootstrap.is_empty() {
            args.dht_bootstrap.clone()
        } else if listen.ip().is_loopback() {
            tracing::info!("listening on loopback: the public DHT routers are not used");
            Vec::new()
        } else {
            DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect()
        };
        session.set_dht(node.clone());
        let boot = node.clone();
        tokio::spawn(async move {
            match boot.bootstrap(&hosts).await {
                Ok(stats) => tracing::info!(?stats, "dht bootstrapped"),
                Err(e) => tracing::warn!(error = %e, "dht bootstrap failed"),
            }
        });
        Ok(Some(Dht {
            node,
            nodes_file,
            port: listen.port(),
            trackers: Vec::new(),
        }))
    }

    /// The node.
    pub fn node(&self) -> &DhtNode {
        &self.node
    }

    /// Announces and looks up `handle`'s torrent for as long as it runs; private
    /// torrents are left alone.
    pub fn track(&mut self, handle: &TorrentHandle, private: bool) {
        if private {
            tracing::info!(torrent = %handle.info_hash(), "private torrent: not using the DHT");
            return;
        }
        self.trackers.push(dht_peers::spawn(
            self.node.clone(),
            handle.clone(),
            DhtPeersConfig::new(self.port),
        ));
    }

    /// Stops the torrents' lookups, saves the routing table and closes the socket.
    pub async fn shutdown(self) {
        for t in self.trackers {
            t.stop().await;
        }
        if let Some(dir) = self.nodes_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match self.node.save_nodes(&self.nodes_file).await {
            Ok(n) => {
                tracing::info!(nodes = n, file = %self.nodes_file.display(), "dht nodes saved")
            }
            Err(e) => tracing::warn!(error = %e, "dht nodes not saved"),
        }
        self.node.shutdown().await;
    }
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
    let node = bind(listen).await?;
    let result = tokio::time::timeout(TOOL_TIMEOUT, node.ping(addr)).await;
    node.shutdown().await;
    let id = result
        .map_err(|_| anyhow::anyhow!("{addr}: no answer within {TOOL_TIMEOUT:?}"))?
        .with_context(|| format!("{addr}: no answer"))?;
    println!("{addr}: node id {}", hex::encode(id.0));
    Ok(())
}

async fn get_peers(info_hash: &str, bootstrap: &[String], listen: SocketAddr) -> Result<()> {
    let Some(info_hash) = InfoHash::from_hex(info_hash) else {
        bail!("{info_hash:?} is not a 40-character hex info-hash");
    };
    let node = bind(listen).await?;
    let work = async {
        node.bootstrap(bootstrap)
            .await
            .context("bootstrap failed")?;
        let mut stream = node.get_peers_stream(info_hash).await?;
        let mut count = 0usize;
        while let Some(batch) = stream.next().await {
            for peer in batch {
                println!("{peer}");
                count += 1;
            }
        }
        Ok::<_, anyhow::Error>((count, stream.stats()))
    };
    let result = tokio::time::timeout(TOOL_TIMEOUT, work).await;
    node.shutdown().await;
    let (count, stats) =
        result.map_err(|_| anyhow::anyhow!("lookup did not finish within {TOOL_TIMEOUT:?}"))??;
    eprintln!("{count} peers ({stats:?})");
    Ok(())
}
