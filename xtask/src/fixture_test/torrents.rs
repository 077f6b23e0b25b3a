//! Test torrents: a deterministic payload in a sandbox plus a .torrent for it made by
//! libtorrent (an independent oracle), and piece-hash checks written from scratch.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha1::{Digest, Sha1};

use crate::payload::{self, CompareOptions, MIB};
use crate::peers::libtorrent::{self, TorrentInfo};
use crate::sandbox::Sandbox;

/// Which payload a test torrent carries.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// One file of 64 MiB + 7777 bytes, 256 KiB pieces: the last piece is short.
    Single,
    /// [`payload::tree_layout`] with 64 KiB pieces: nested folders, 0-byte files, files
    /// shorter than a piece and files spanning pieces.
    MultiFile,
}

impl Shape {
    /// Piece length used for this shape.
    pub fn piece_len(self) -> u64 {
        match self {
            Shape::Single => 256 * 1024,
            Shape::MultiFile => 64 * 1024,
        }
    }

    /// Total payload length.
    pub fn total_len(self) -> u64 {
        match self {
            Shape::Single => SINGLE_LEN,
            Shape::MultiFile => payload::tree_layout(self.piece_len())
                .iter()
                .map(|&(_, len)| len)
                .sum(),
        }
    }

    /// Writes the payload into `dir` and returns its path (`dir/<name>`).
    pub fn write(self, dir: &Path) -> Result<PathBuf> {
        match self {
            Shape::Single => payload::single_file(dir, "single.bin", SINGLE_LEN),
            Shape::MultiFile => payload::multi_file_tree(dir, "tree", self.piece_len()),
        }
    }
}

/// Length of [`Shape::Single`]: at least 64 MiB, not a multiple of the piece length.
const SINGLE_LEN: u64 = 64 * MIB + 7777;

/// A payload on disk and a .torrent describing it.
pub struct TestTorrent {
    /// The folder that holds the payload (a client's "save path" / download dir).
    pub data_dir: PathBuf,
    /// The payload itself: `data_dir/<name>`.
    pub content: PathBuf,
    /// The .torrent file.
    pub torrent: PathBuf,
    /// libtorrent's view of the .torrent.
    pub info: TorrentInfo,
}

impl TestTorrent {
    /// Writes `shape` under `<sandbox>/seed-data` and has libtorrent make a v1 torrent of
    /// it at `<sandbox>/<name>.torrent` announcing to `trackers`.
    pub fn make(sandbox: &Sandbox, shape: Shape, trackers: &[String]) -> Result<Self> {
        let data_dir = sandbox.mkdir("seed-data")?;
        let content = shape.write(&data_dir)?;
        let name = content.file_name().context("payload has a name")?;
        let torrent = sandbox
            .path()
            .join(format!("{}.torrent", name.to_string_lossy()));
        let info = libtorrent::create(&content, &torrent, shape.piece_len(), trackers)?;
        if info.total_size != shape.total_len() {
            bail!(
                "libtorrent made a torrent of {} bytes, expected {}",
                info.total_size,
                shape.total_len()
            );
        }
        Ok(TestTorrent {
            data_dir,
            content,
            torrent,
            info,
        })
    }

    /// The info-hash as 20 bytes.
    pub fn info_hash(&self) -> Result<[u8; 20]> {
        let bytes = hex::decode(&self.info.info_hash)?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("info-hash is not 20 bytes"))
    }

    /// Checks that `download_dir/<name>` is a byte-identical copy of the payload.
    pub fn check_copy(&self, download_dir: &Path, opts: CompareOptions) -> Result<()> {
        let name = self.content.file_name().context("payload has a name")?;
        payload::compare_trees(&self.content, &download_dir.join(name), opts)
            .context("downloaded data differs from the original")
    }
}

/// SHA-1 (hex) of every `piece_len` piece of the concatenation of `files`.
pub fn piece_hashes(files: &[PathBuf], piece_len: u64) -> Result<Vec<String>> {
    let mut hashes = Vec::new();
    let mut hasher = Sha1::new();
    let mut in_piece = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let mut file =
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        loop {
            let want = (piece_len - in_piece).min(buf.len() as u64) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            in_piece += n as u64;
            if in_piece == piece_len {
                hashes.push(hex::encode(hasher.finalize_reset()));
                in_piece = 0;
            }
        }
    }
    if in_piece > 0 {
        hashes.push(hex::encode(hasher.finalize()));
    }
    Ok(hashes)
}

/// For each piece of single-file `info`: is it correct in `file`? (Missing or short data
/// counts as wrong.)
pub fn verified_pieces(file: &Path, info: &TorrentInfo) -> Result<Vec<bool>> {
    let mut data = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut buf = vec![0u8; info.piece_length as usize];
    let mut good = Vec::with_capacity(info.piece_hashes.len());
    for (index, expected) in info.piece_hashes.iter().enumerate() {
        let len = piece_len_at(info, index) as usize;
        let mut filled = 0;
        while filled < len {
            match data.read(&mut buf[filled..len])? {
                0 => break,
                n => filled += n,
            }
        }
        good.push(filled == len && hex::encode(Sha1::digest(&buf[..len])) == *expected);
    }
    Ok(good)
}

/// Length of piece `index` of `info` (the last one may be short).
pub fn piece_len_at(info: &TorrentInfo, index: usize) -> u64 {
    let start = index as u64 * info.piece_length;
    info.piece_length.min(info.total_size.saturating_sub(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_hashes_span_files_and_end_short() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"abcde").unwrap();
        std::fs::write(&b, b"fghij12").unwrap();
        let hashes = piece_hashes(&[a, b], 4).unwrap();
        let expect: Vec<String> = [&b"abcd"[..], b"efgh", b"ij12"]
            .iter()
            .map(|p| hex::encode(Sha1::digest(p)))
            .collect();
        assert_eq!(hashes, expect);
        let odd = piece_hashes(&[dir.path().join("a")], 3).unwrap();
        assert_eq!(
            odd,
            vec![
                hex::encode(Sha1::digest(b"abc")),
                hex::encode(Sha1::digest(b"de"))
            ]
        );
    }

    #[test]
    fn piece_len_at_sums_to_total() {
        let info = TorrentInfo {
            info_hash: String::new(),
            name: "f".into(),
            num_pieces: 3,
            piece_length: 4,
            total_size: 10,
            files: vec![],
            piece_hashes: vec![String::new(); 3],
        };
        let lens: Vec<u64> = (0..3).map(|i| piece_len_at(&info, i)).collect();
        assert_eq!(lens, [4, 4, 2]);
    }

    #[test]
    fn verified_pieces_counts_only_matching_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"0123456789").unwrap();
        let info = TorrentInfo {
            info_hash: String::new(),
            name: "f".into(),
            num_pieces: 3,
            piece_length: 4,
            total_size: 10,
            files: vec![],
            piece_hashes: piece_hashes(std::slice::from_ref(&file), 4).unwrap(),
        };
        assert_eq!(verified_pieces(&file, &info).unwrap(), [true, true, true]);
        std::fs::write(&file, b"0123X56789").unwrap();
        assert_eq!(verified_pieces(&file, &info).unwrap(), [true, false, true]);
        std::fs::write(&file, b"012345").unwrap();
        assert_eq!(verified_pieces(&file, &info).unwrap(), [true, false, false]);
    }
}
