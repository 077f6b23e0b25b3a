//! `bt seed <file.torrent> <DATA_DIR> [--listen ADDR] [--peer IP:PORT]...`.
//!
//! Checks the data under DATA_DIR (the folder holding the torrent's name, as for
//! `bt download -o`), then serves it until SIGINT or SIGTERM and prints a final line
//! `uploaded: <bytes>` (payload bytes sent) on stdout. `--peer` dials out to leechers,
//! for clients that never dial loopback addresses themselves (Transmission).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use bt_engine::{AddTorrentParams, Session, StorageKind, TorrentStats};
use bt_meta::Metainfo;

use crate::download::{load_torrent, log_trackers, runtime, session, stop_signal, watch};
use crate::progress::Progress;

/// Arguments of `bt seed`.
#[derive(clap::Args)]
pub struct Args {
    /// The .torrent file.
    torrent: PathBuf,
    /// The folder holding the torrent's data (`DATA_DIR/<name>`).
    data_dir: PathBuf,
    /// Where to accept connections from peers.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// A peer to connect to; repeat for more.
    #[arg(long = "peer", value_name = "IP:PORT")]
    peers: Vec<SocketAddr>,
    #[command(flatten)]
    dht: crate::dht::DhtArgs,
    #[command(flatten)]
    encryption: crate::encryption::EncryptionArgs,
}

/// Runs `bt seed`.
pub fn run(args: Args) -> Result<()> {
    let meta = load_torrent(&args.torrent)?;
    runtime()?.block_on(seed(args, meta))
}

async fn seed(args: Args, meta: Metainfo) -> Result<()> {
    let dht = args.dht.settings(&args.data_dir);
    let session = session(args.listen, args.encryption.policy(), dht).await?;
    let result = seed_with(&session, &args, meta).await;
    // One way out: trackers hear `stopped`, resume state and DHT nodes are saved.
    session.shutdown().await;
    let stats = result?;
    println!("uploaded: {}", stats.uploaded);
    Ok(())
}

/// Checks the data, then serves it until interrupted; the final stats.
async fn seed_with(session: &Session, args: &Args, meta: Metainfo) -> Result<TorrentStats> {
    let mut progress = Progress::new(&meta.info.name, meta.info.total_len());
    let mut params = AddTorrentParams::new(meta, &args.data_dir);
    params.storage = StorageKind::ExistingFiles;
    params.peers = args.peers.clone();
    params.on_check = Some(progress.check_callback());
    let handle = session.add_torrent(params).await?;
    let stats = handle.stats();
    if !stats.state.is_complete() {
        bail!(
            "{}: data is incomplete: {} of {} pieces verified (see `bt verify`)",
            args.data_dir.display(),
            stats.pieces_have,
            stats.pieces_total
        );
    }
    log_trackers(session, &handle);
    let mut stop = Box::pin(stop_signal());
    watch(&handle, &mut progress, |_| false, &mut stop).await?;
    let stats = handle.stats();
    progress.finish(&stats);
    Ok(stats)
}
