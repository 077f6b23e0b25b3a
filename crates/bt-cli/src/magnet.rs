//! Magnet links in `bt download`: the session fetches the info dictionary from peers
//! (BEP 9, `Session::resolve_magnet`), then the download goes on exactly as with a
//! `.torrent`.
//!
//! Peers for the metadata come from the link's `x.pe`, `--peer`, the link's `tr` trackers
//! and the DHT when it is on. The fetched dictionary must hash to the link's `btih`; the
//! torrent built from it has the link's trackers as its announce tiers. `--save-torrent
//! FILE` writes that torrent as a `.torrent` (canonical bencode, the info bytes exactly
//! as fetched).
//!
//! Links with only a v2 hash (`btmh`) are refused: peers are found and greeted by the v1
//! hash. A `so` (select-only) parameter is ignored: every file is downloaded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bt_engine::proto::metadata::torrent_file;
use bt_engine::sources::magnet::MagnetError;
use bt_engine::Session;
use bt_meta::{Magnet, Metainfo};

use crate::download::{load_torrent, stop_signal};

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

/// Loads the `.torrent` at `target`, or has `session` fetch the metadata of the magnet
/// link `target` (from `peers` and every source the link and the session have).
pub async fn resolve(
    target: &str,
    session: &Session,
    peers: &[SocketAddr],
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
    let label = magnet
        .display_name
        .clone()
        .or_else(|| magnet.info_hash.map(|h| h.to_hex()))
        .unwrap_or_else(|| "magnet".to_owned());
    eprintln!("{label}: fetching metadata from peers");
    let resolved = tokio::select! {
        r = session.resolve_magnet(&magnet, peers) => match r {
            Ok(r) => r,
            Err(bt_engine::Error::Magnet(e @ MagnetError::Metadata(_))) => {
                return Err(e).with_context(|| format!("{label}: cannot fetch the metadata"));
            }
            Err(e) => return Err(e).with_context(|| label.clone()),
        },
        r = stop_signal() => {
            r?;
            bail!("{label}: interrupted while fetching the metadata");
        }
    };
    let meta = resolved.metainfo;
    eprintln!(
        "{}: metadata received ({} bytes of metadata, {} files, {} bytes)",
        meta.info.name,
        resolved.info.len(),
        meta.info.files().iter().filter(|f| !f.is_pad()).count(),
        meta.info.total_len()
    );
    if let Some(path) = &args.save_torrent {
        save(path, &torrent_file(&resolved.info, &magnet.tracker_tiers()))?;
    }
    Ok(Resolved {
        meta,
        peers: resolved.peers,
    })
}

/// Writes `bytes` to `path` through a temporary file beside it.
fn save(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".part");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_engine::{AddTorrentParams, SessionConfig, StorageKind};
    use bt_meta::create::{create_torrent, CreateOptions};
    use std::time::Duration;

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
        let resolved =
            tokio::time::timeout(Duration::from_secs(20), resolve(&link, &client, &[], &args))
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
                    resolve(&link, client, &[], args),
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
