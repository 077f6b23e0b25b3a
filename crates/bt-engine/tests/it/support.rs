//! Helpers: torrents built in memory, sessions on 127.0.0.1, payloads on disk.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use bt_bencode::{Dict, Value};
use bt_engine::{Session, SessionConfig, TorrentHandle, TorrentStats};
use bt_meta::Metainfo;
use rand::{Rng, SeedableRng};
use sha1::{Digest, Sha1};

/// Deterministic pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

fn bytes(b: &[u8]) -> Value<'static> {
    Value::Bytes(Cow::Owned(b.to_vec()))
}

/// A torrent named `name` of `files` (path relative to the torrent folder, contents);
/// a single-file torrent when `files` is one entry with an empty path.
pub fn torrent(name: &str, files: &[(&str, &[u8])], piece_len: u32) -> Metainfo {
    let stream: Vec<u8> = files.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let pieces: Vec<u8> = stream
        .chunks(piece_len as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = Dict::new();
    if files.len() == 1 && files[0].0.is_empty() {
        info.insert(&b"length"[..], Value::Int(files[0].1.len() as i64));
    } else {
        let list = files
            .iter()
            .map(|(path, data)| {
                let mut f = Dict::new();
                f.insert(&b"length"[..], Value::Int(data.len() as i64));
                let parts = path.split('/').map(|p| bytes(p.as_bytes())).collect();
                f.insert(&b"path"[..], Value::List(parts));
                Value::Dict(f)
            })
            .collect();
        info.insert(&b"files"[..], Value::List(list));
    }
    info.insert(&b"name"[..], bytes(name.as_bytes()));
    info.insert(&b"piece length"[..], Value::Int(i64::from(piece_len)));
    info.insert(&b"pieces"[..], bytes(&pieces));
    let mut root = Dict::new();
    root.insert(&b"info"[..], Value::Dict(info));
    Metainfo::from_bytes(&Value::Dict(root).encode()).expect("valid torrent")
}

/// Writes `files` of a torrent named `name` under `dir` as a client would lay them out.
pub fn write_files(dir: &Path, name: &str, files: &[(&str, &[u8])]) {
    for (path, data) in files {
        let full = if path.is_empty() {
            dir.join(name)
        } else {
            dir.join(name).join(path)
        };
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
}

/// A session listening on a free port of 127.0.0.1.
pub async fn session() -> Session {
    Session::new(SessionConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ..SessionConfig::default()
    })
    .await
    .expect("session starts")
}

/// Waits for completion, failing the test after `secs` seconds.
pub async fn complete(handle: &TorrentHandle, secs: u64) -> TorrentStats {
    match tokio::time::timeout(Duration::from_secs(secs), handle.wait_complete()).await {
        Ok(r) => r.expect("torrent completes"),
        Err(_) => panic!("not complete after {secs} s: {:?}", handle.stats()),
    }
}

/// Logs at `BT_LOG` (e.g. `bt_engine=debug`) when set.
pub fn logs() {
    if let Ok(filter) = std::env::var("BT_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}
