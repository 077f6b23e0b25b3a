//! Magnet links in `bt download`: the info dictionary is fetched from peers (BEP 9), then
//! the download goes on exactly as with a `.torrent`.
//!
//! Peers for the metadata come from the link's `x.pe`, `--peer`, the link's `tr` trackers
//! (announced to every 30 s until the metadata is in) and the DHT when it is on. The
//! fetched dictionary must hash to the link's `btih`; the torrent built from it has the
//! link's trackers as its announce tiers. `--save-torrent FILE` writes that torrent as a
//! `.torrent` (canonical bencode, the info bytes exactly as fetched).
//!
//! Links with only a v2 hash (`btmh`) are refused: peers are found and greeted by the v1
//! hash. A `so` (select-only) parameter is ignored: every file is downloaded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bt_dht::DhtNode;
use bt_engine::fetch_metadata;
use bt_engine::proto::metadata::{metainfo_from_info, torrent_file, MetadataConfig};
use bt_engine::Session;
use bt_meta::{InfoHash, Magnet, Metainfo, PeerId};
use bt_tracker::{AnnounceRequest, TrackerClient};
use tokio::sync::mpsc;

use crate::download::{load_torrent, stop_signal};

/// Time between announces to the link's trackers while the metadata is fetched.
const TRACKER_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait for one tracker.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time between DHT lookups while the metadata is fetched.
const DHT_INTERVAL: Duration = Duration::from_secs(5);

/// Magnet options of `bt download`.
#[derive(clap::Args, Debug, Default)]
pub struct MagnetArgs {
    /// Also write the torrent (for a magnet link: once its metadata is fetched) as a
    /// .torrent file.
    #[arg(long, value_name = "FILE")]
    pub save_torrent: Option<PathBuf>,
}

/// Whether `target` is a magnet link rather than a path.
pub fn is_magnet(target: &str) -> bool {
    target
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
}

/// A torrent ready for `add_torrent`, and the peers to dial for it.
pub struct Resolved {
    /// The torrent.
    pub meta: Metainfo,
    /// `--peer`s, the link's `x.pe`s and the peers that served the metadata.
    pub peers: Vec<SocketAddr>,
}

/// Loads the `.torrent` at `target`, or fetches the metadata of the magnet link `target`
/// through `session`'s peer id and port, the given peers, trackers and `dht`.
pub async fn resolve(
    target: &str,
    session: &Session,
    peers: &[SocketAddr],
    dht: Option<&DhtNode>,
    args: &MagnetArgs,
) -> Result<Resolved> {
    if !is_magnet(target) {
        let meta = load_torrent(Path::new(target))?;
        if let Some(path) = &args.save_torrent {
            save(path, &torrent_file(meta.raw_info(), &meta.trackers()))?;
        }
        return Ok(Resolved {
            meta,
            peers: peers.to_vec(),
        });
    }
    let magnet = Magnet::parse(target).context("bad magnet link")?;
    let Some(info_hash) = magnet.info_hash else {
        bail!("magnet link has no btih (v1) info-hash; v2-only links are not supported");
    };
    let label = magnet
        .display_name
        .clone()
        .unwrap_or_else(|| info_hash.to_hex());
    let mut known: Vec<SocketAddr> = Vec::new();
    for a in magnet.peers.iter().chain(peers) {
        if !known.contains(a) {
            known.push(*a);
        }
    }
    let (tx, rx) = mpsc::channel(256);
    for a in &known {
        // ok to ignore: the receiver is alive and the channel holds 256
        let _ = tx.try_send(*a);
    }
    let port = session.local_addr().port();
    let peer_id = session.peer_id();
    if !magnet.trackers.is_empty() {
        spawn_tracker_source(
            info_hash,
            peer_id,
            port,
            magnet.trackers.clone(),
            tx.clone(),
        )?;
    }
    if let Some(node) = dht {
        spawn_dht_source(node.clone(), info_hash, tx.clone());
    }
    let sources = known.len() + magnet.trackers.len() + usize::from(dht.is_some());
    drop(tx);
    if sources == 0 {
        bail!(
            "{label}: no peers to ask for the metadata (the link has no x.pe or tr, no \
             --peer was given and the DHT is off)"
        );
    }
    eprintln!("{label}: fetching metadata from peers");
    let fetch = fetch_metadata(
        session.dialer(),
        info_hash,
        peer_id,
        rx,
        MetadataConfig::default(),
    );
    let fetched = tokio::select! {
        r = fetch => r.with_context(|| format!("{label}: cannot fetch the metadata"))?,
        r = stop_signal() => {
            r?;
            bail!("{label}: interrupted while fetching the metadata");
        }
    };
    let tiers = magnet.tracker_tiers();
    let meta = metainfo_from_info(info_hash, &fetched.info, &tiers)?;
    eprintln!(
        "{}: metadata received ({} bytes of metadata, {} files, {} bytes)",
        meta.info.name,
        fetched.info.len(),
        meta.info.files.iter().filter(|f| !f.pad).count(),
        meta.info.total_len()
    );
    if let Some(path) = &args.save_torrent {
        save(path, &torrent_file(&fetched.info, &tiers))?;
    }
    for a in fetched.peers {
        if !known.contains(&a) {
            known.push(a);
        }
    }
    Ok(Resolved { meta, peers: known })
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn save(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Announces to `trackers` every [`TRACKER_INTERVAL`] until `tx` closes, sending the peers
/// found. Runs on its own thread: bt-tracker's UDP announce future is not `Send`.
fn spawn_tracker_source(
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    trackers: Vec<String>,
    tx: mpsc::Sender<SocketAddr>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bt-magnet-trackers".into())
        .spawn(move || {
            rt.block_on(async move {
                let client = TrackerClient::default();
                loop {
                    for url in &trackers {
                        let mut req = AnnounceRequest::new(info_hash, peer_id, port);
                        // The size is unknown until the metadata is in; not 0, or we
                        // would count as a seed.
                        req.left = 1;
                        req.numwant = Some(50);
                        match tokio::time::timeout(TRACKER_TIMEOUT, client.announce(url, &req))
                            .await
                        {
                            Ok(Ok(resp)) => {
                                for a in resp.peer_addrs() {
                                    if tx.send(a).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(tracker = %url, error = %e, "announce failed")
                            }
                            Err(_) => tracing::warn!(tracker = %url, "announce timed out"),
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(TRACKER_INTERVAL) => {}
                        _ = tx.closed() => return,
                    }
                }
            })
        })
        .context("cannot start the tracker thread")?;
    Ok(())
}

/// Looks `info_hash` up in the DHT every [`DHT_INTERVAL`] until `tx` closes, sending the
/// peers found.
fn spawn_dht_source(node: DhtNode, info_hash: InfoHash, tx: mpsc::Sender<SocketAddr>) {
    tokio::spawn(async move {
        loop {
            match node.get_peers_stream(info_hash).await {
                Ok(mut stream) => {
                    while let Some(batch) = stream.next().await {
                        for a in batch {
                            if tx.send(a).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "dht lookup failed");
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(DHT_INTERVAL) => {}
                _ = tx.closed() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_engine::{AddTorrentParams, SessionConfig, StorageKind};
    use bt_meta::create::{create_torrent, CreateOptions};

    #[test]
    fn magnet_or_path() {
        assert!(is_magnet("magnet:?xt=urn:btih:0123"));
        assert!(is_magnet("MAGNET:?xt"));
        assert!(!is_magnet("magnet.torrent"));
        assert!(!is_magnet("./magnet:x"));
        assert!(!is_magnet(""));
    }

    async fn session() -> Session {
        Session::new(SessionConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            ..SessionConfig::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_magnet_resolves_through_a_seeding_session_and_saves_the_torrent() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(data_dir.join("m.bin"), &payload).unwrap();
        let opts = CreateOptions {
            piece_len: Some(16 * 1024),
            trackers: vec![vec!["http://127.0.0.1:1/announce".into()]],
            threads: 1,
            ..CreateOptions::default()
        };
        let created = create_torrent(&data_dir.join("m.bin"), &opts, |_| {}).unwrap();
        let meta = Metainfo::from_bytes(&created.bytes).unwrap();
        let seeder = session().await;
        let mut params = AddTorrentParams::new(meta.clone(), &data_dir);
        params.storage = StorageKind::ExistingFiles;
        seeder.add_torrent(params).await.unwrap();

        let client = session().await;
        let tracker = "http://127.0.0.1:9/announce";
        let link = format!(
            "magnet:?xt=urn:btih:{}&dn=m.bin&tr={}&x.pe={}",
            created.info_hash.to_hex(),
            tracker.replace(':', "%3A").replace('/', "%2F"),
            seeder.local_addr()
        );
        let saved = dir.path().join("saved.torrent");
        let args = MagnetArgs {
            save_torrent: Some(saved.clone()),
        };
        let resolved = tokio::time::timeout(
            Duration::from_secs(20),
            resolve(&link, &client, &[], None, &args),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(resolved.meta.info_hash, Some(created.info_hash));
        assert_eq!(resolved.peers, vec![seeder.local_addr()]);
        // The magnet's trackers, not the original torrent's.
        assert_eq!(resolved.meta.trackers(), vec![vec![tracker.to_owned()]]);
        let saved = Metainfo::from_bytes(&std::fs::read(saved).unwrap()).unwrap();
        assert!(saved.raw_info() == meta.raw_info());
        assert_eq!(saved.announce.as_deref(), Some(tracker));
        client.shutdown().await;
        seeder.shutdown().await;
    }

    #[tokio::test]
    async fn magnets_without_usable_sources_fail_with_one_clear_error() {
        let client = session().await;
        let args = MagnetArgs::default();
        let hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let err = |link: String| {
            let client = &client;
            let args = &args;
            async move {
                let r = tokio::time::timeout(
                    Duration::from_secs(20),
                    resolve(&link, client, &[], None, args),
                )
                .await
                .expect("resolve finishes");
                format!("{:#}", r.err().expect("an error"))
            }
        };
        let e = err(format!("magnet:?xt=urn:btih:{hash}")).await;
        assert!(e.contains("no peers to ask"), "{e}");
        let e = err(format!("magnet:?xt=urn:btmh:1220{}", "ab".repeat(32))).await;
        assert!(e.contains("v2-only"), "{e}");
        let e = err("magnet:?xt=urn:btih:nothex".to_owned()).await;
        assert!(e.contains("bad magnet link"), "{e}");
        // A peer that is not there: the fetch gives up once every source is tried.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let e = err(format!("magnet:?xt=urn:btih:{hash}&x.pe={dead}")).await;
        assert!(e.contains("cannot fetch the metadata"), "{e}");
        client.shutdown().await;
    }
}
