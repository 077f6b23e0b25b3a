//! Embedding the engine: a seeder and a leecher `Session` in one process on 127.0.0.1.
//!
//! Creates a payload in a temporary folder, builds its torrent, seeds it from one session
//! and downloads it with another, then checks the copy is byte-identical.
//!
//! ```text
//! cargo run --release -p bt-engine --example embed -- [SIZE_MIB]
//! ```

use std::borrow::Cow;
use std::time::Instant;

use bt_bencode::{Dict, Value};
use bt_engine::{AddTorrentParams, Session, SessionConfig};
use bt_meta::Metainfo;
use rand::{RngCore, SeedableRng};
use sha1::{Digest, Sha1};

/// A single-file torrent of `data` named `name`.
fn make_torrent(name: &str, data: &[u8], piece_len: u32) -> Metainfo {
    let pieces: Vec<u8> = data
        .chunks(piece_len as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = Dict::new();
    info.insert(&b"length"[..], Value::Int(data.len() as i64));
    info.insert(
        &b"name"[..],
        Value::Bytes(Cow::Owned(name.as_bytes().to_vec())),
    );
    info.insert(&b"piece length"[..], Value::Int(i64::from(piece_len)));
    info.insert(&b"pieces"[..], Value::Bytes(Cow::Owned(pieces)));
    let mut root = Dict::new();
    root.insert(&b"info"[..], Value::Dict(info));
    Metainfo::from_bytes(&Value::Dict(root).encode()).expect("a valid torrent")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let mib: usize = std::env::args().nth(1).map_or(Ok(16), |s| s.parse())?;
    let tmp = tempfile::tempdir()?;
    let (seed_dir, leech_dir) = (tmp.path().join("seed"), tmp.path().join("leech"));
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::create_dir_all(&leech_dir)?;

    let mut data = vec![0u8; mib << 20];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut data);
    std::fs::write(seed_dir.join("payload.bin"), &data)?;
    let meta = make_torrent("payload.bin", &data, 256 * 1024);
    drop(data);

    let config = || SessionConfig {
        listen_addr: "127.0.0.1:0".parse().expect("an address"),
        ..SessionConfig::default()
    };
    let seeder = Session::new(config()).await?;
    seeder
        .add_torrent(AddTorrentParams::new(meta.clone(), &seed_dir))
        .await?;

    let leecher = Session::new(config()).await?;
    let mut params = AddTorrentParams::new(meta, &leech_dir);
    params.peers = vec![seeder.local_addr()];
    params.seed = false;
    let start = Instant::now();
    let torrent = leecher.add_torrent(params).await?;
    let stats = torrent.wait_complete().await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "downloaded {} MiB in {secs:.2} s: {:.0} MiB/s",
        stats.total_len >> 20,
        stats.total_len as f64 / secs / f64::from(1 << 20)
    );

    let same = std::fs::read(seed_dir.join("payload.bin"))?
        == std::fs::read(leech_dir.join("payload.bin"))?;
    println!("byte-identical: {same}");
    leecher.shutdown().await;
    seeder.shutdown().await;
    if !same {
        return Err("copy differs".into());
    }
    Ok(())
}
