//! The work every client is given: `n` small complete single-file torrents, their data on
//! disk in one folder (`t000000.bin`, ...), made in a few seconds from xorshift data (each
//! file its own seed, so every info-hash differs). The `.torrent` bytes are built here with
//! bt-bencode and SHA-1, with no tracker, so a seeding client contacts nobody.

use std::borrow::Cow;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bt_bencode::{Dict, Value};
use sha1::{Digest, Sha1};

use crate::payload::XorShift;

/// Piece length of every torrent: a file of up to 16 KiB is one piece.
pub const PIECE_LEN: u64 = 16 * 1024;

/// One torrent of the corpus.
pub struct Item {
    /// Its info-hash, 40 lowercase hex digits.
    pub hash: String,
    /// The `.torrent` file's bytes.
    pub torrent: Vec<u8>,
}

/// All the torrents and the folder holding their data.
pub struct Corpus {
    /// Where every torrent's file lies (the clients' save path).
    pub data_dir: PathBuf,
    /// The torrents, in the order they are added.
    pub items: Vec<Item>,
    /// Bytes of each torrent's file.
    pub file_len: u64,
}

impl Corpus {
    /// Writes `n` files of `file_len` bytes into `data_dir` and makes their torrents.
    pub fn make(data_dir: &Path, n: usize, file_len: u64) -> Result<Corpus> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let mut data = vec![0u8; usize::try_from(file_len)?];
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            let name = file_name(i);
            XorShift::new(0xDAE_0000 + i as u64).fill(&mut data);
            let path = data_dir.join(&name);
            fs::write(&path, &data).with_context(|| format!("cannot write {}", path.display()))?;
            items.push(single_file_torrent(&name, &data));
        }
        Ok(Corpus {
            data_dir: data_dir.to_path_buf(),
            items,
            file_len,
        })
    }

    /// Bytes of data over all torrents.
    pub fn total_len(&self) -> u64 {
        self.file_len * self.items.len() as u64
    }
}

/// The name (and file name) of torrent `i`.
fn file_name(i: usize) -> String {
    format!("t{i:06}.bin")
}

/// A single-file torrent of `data` named `name`, without trackers.
fn single_file_torrent(name: &str, data: &[u8]) -> Item {
    let pieces: Vec<u8> = data
        .chunks(PIECE_LEN as usize)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = Dict::new();
    info.insert(&b"length"[..], Value::Int(data.len() as i64));
    info.insert(
        &b"name"[..],
        Value::Bytes(Cow::Owned(name.as_bytes().to_vec())),
    );
    info.insert(&b"piece length"[..], Value::Int(PIECE_LEN as i64));
    info.insert(&b"pieces"[..], Value::Bytes(Cow::Owned(pieces)));
    let info = Value::Dict(info).encode();
    let hash = hex::encode(Sha1::digest(&info));
    // The root dictionary holds the one key `info`: its value is these exact bytes.
    let mut torrent = b"d4:info".to_vec();
    torrent.extend_from_slice(&info);
    torrent.push(b'e');
    Item { hash, torrent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torrents_load_and_hash_as_bt_meta_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = Corpus::make(dir.path(), 3, 5000).unwrap();
        assert_eq!(corpus.total_len(), 15_000);
        let mut hashes: Vec<&str> = corpus.items.iter().map(|i| i.hash.as_str()).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), 3);
        for (i, item) in corpus.items.iter().enumerate() {
            let meta = bt_meta::Metainfo::from_bytes(&item.torrent).unwrap();
            assert_eq!(meta.info_hash.unwrap().to_hex(), item.hash);
            assert_eq!(meta.info.name, file_name(i));
            let data = fs::read(dir.path().join(file_name(i))).unwrap();
            assert_eq!(data.len(), 5000);
            assert_eq!(
                meta.piece_hash(bt_meta::PieceIndex(0)).unwrap(),
                &<[u8; 20]>::from(Sha1::digest(&data))
            );
        }
    }
}
