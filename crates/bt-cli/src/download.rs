//! `bt download <file.torrent> [-o DIR] [--peer IP:PORT]... [--listen ADDR] [--seed]`.
//!
//! Files land under DIR as the torrent names them (`DIR/<name>` for a single file,
//! `DIR/<name>/...` otherwise). Resume state lives in `DIR/.bt/<info-hash>.resume`, so an
//! interrupted download started again with the same DIR fetches only what is missing.
//! The resume state is trusted only while every file has the size and modification time
//! it records; otherwise the data is hashed again at start (after a crash, the files
//! always changed since the last save). Data changed without changing either is trusted
//! like any fast-resume client would; `bt verify` finds it and corrects the resume state.
//! Exits 0 only once every piece is verified on disk. With `--seed` it keeps serving
//! peers afterwards until SIGINT or SIGTERM, then prints `uploaded: <bytes>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bt_engine::sources::dht::DhtSettings;
use bt_engine::EncryptionPolicy;
use bt_engine::{
    AddTorrentParams, Session, SessionConfig, TorrentHandle, TorrentState, TorrentStats,
};
use bt_meta::Metainfo;

use crate::progress::Progress;

/// Arguments of `bt download`.
#[derive(clap::Args)]
pub struct Args {
    /// The .torrent file, or a magnet link (`magnet:?xt=urn:btih:...`).
    torrent: String,
    /// The folder to download into; the torrent's files go under it as the torrent
    /// names them. Created if missing.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
    /// A peer to connect to; repeat for more.
    #[arg(long = "peer", value_name = "IP:PORT")]
    peers: Vec<SocketAddr>,
    /// Where to accept connections from peers.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6881")]
    listen: SocketAddr,
    /// Keep seeding once the download is complete, until interrupted.
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    magnet: crate::magnet::MagnetArgs,
    #[command(flatten)]
    dht: crate::dht::DhtArgs,
    #[command(flatten)]
    encryption: crate::encryption::EncryptionArgs,
}

/// Reads and validates a .torrent file.
pub fn load_torrent(path: &Path) -> Result<Metainfo> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| name.clone())?;
    Metainfo::from_bytes(&bytes).with_context(|| name)
}

/// The runtime the engine runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bt-worker")
        .build()?)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is called
/// (inside the runtime), not when the future is first polled, so a signal that arrives in
/// between is not lost to the default action.
pub fn stop_signal() -> impl std::future::Future<Output = Result<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (mut term, mut int) = (term?, int?);
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        Ok(())
    }
}

/// A session listening on `listen` with this encryption policy and DHT (trackers are
/// announced to as the torrents name them).
pub async fn session(
    listen: SocketAddr,
    encryption: EncryptionPolicy,
    dht: Option<DhtSettings>,
) -> Result<Session> {
    Ok(Session::new(SessionConfig {
        listen_addr: listen,
        encryption,
        dht,
        ..SessionConfig::default()
    })
    .await?)
}

/// Prints what `handle`'s trackers do as `<label>: tracker: ...` lines.
pub fn log_trackers(session: &Session, handle: &TorrentHandle) {
    if let Some(status) = session.tracker_status(&handle.info_hash()) {
        crate::tracker::log_status(status, &handle.stats().name);
    }
}

/// Shows progress until `done` holds for the torrent's stats, the torrent fails, or a
/// stop signal arrives (`Ok(false)`).
pub async fn watch(
    handle: &TorrentHandle,
    progress: &mut Progress,
    done: impl Fn(&TorrentState) -> bool,
    stop: &mut std::pin::Pin<Box<impl std::future::Future<Output = Result<()>>>>,
) -> Result<bool> {
    let mut rx = handle.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let stats = handle.stats();
        progress.update(&stats);
        if let TorrentState::Error(e) = &stats.state {
            progress.finish(&stats);
            bail!("{}: {e}", stats.name);
        }
        if done(&stats.state) {
            return Ok(true);
        }
        tokio::select! {
            r = stop.as_mut() => {
                r?;
                return Ok(false);
            }
            _ = tick.tick() => {}
            r = rx.changed() => if r.is_err() {
                bail!("{}: torrent stopped", stats.name);
            },
        }
    }
}

/// Runs `bt download`.
pub fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    runtime()?.block_on(download(args))
}

async fn download(args: Args) -> Result<()> {
    let dht = args.dht.settings(&args.output);
    let session = session(args.listen, args.encryption.policy(), dht).await?;
    let result = download_with(&session, &args).await;
    // One way out: trackers hear `stopped`, resume state and DHT nodes are saved.
    session.shutdown().await;
    let stats = result?;
    if args.seed {
        println!("uploaded: {}", stats.uploaded);
    }
    if !stats.state.is_complete() {
        bail!(
            "{}: interrupted with {} of {} pieces; run the same command again to resume",
            stats.name,
            stats.pieces_have,
            stats.pieces_total
        );
    }
    Ok(())
}

/// Resolves the torrent, downloads it (and seeds with `--seed`) until done or
/// interrupted; the final stats.
async fn download_with(session: &Session, args: &Args) -> Result<TorrentStats> {
    let resolved =
        crate::magnet::resolve(&args.torrent, session, &args.peers, &args.magnet).await?;
    let meta = resolved.meta;
    let mut progress = Progress::new(&meta.info.name, meta.info.total_len());
    let mut params = AddTorrentParams::new(meta, &args.output);
    params.peers = resolved.peers;
    params.seed = args.seed;
    params.on_check = Some(progress.check_callback());
    let handle = session.add_torrent(params).await?;
    log_trackers(session, &handle);
    let mut stop = Box::pin(stop_signal());
    let complete = watch(&handle, &mut progress, TorrentState::is_complete, &mut stop).await?;
    if complete && args.seed {
        // Seed until interrupted.
        watch(&handle, &mut progress, |_| false, &mut stop).await?;
    }
    let stats = handle.stats();
    progress.finish(&stats);
    Ok(stats)
}
