//! Test fixtures: torrents with random payloads laid out over files of chosen sizes.

use std::path::Path;

use bt_meta::{BlockInfo, Geometry, InfoHash, PieceIndex};
use rand::{Rng, SeedableRng};

use super::{sha1, FileSpec, StorageLayout};

/// A torrent for tests: its layout and the bytes of its whole byte stream (pad regions
/// are zeros).
pub(crate) struct Fixture {
    pub layout: StorageLayout,
    pub payload: Vec<u8>,
}

/// A file of a fixture: path under the torrent folder, length, pad or not.
pub(crate) type F<'a> = (&'a str, u64, bool);

impl Fixture {
    /// A multi-file torrent `name` under `dir` (paths `dir/name/<file>`), or a single-file
    /// one (`dir/name`) if `files` is one entry with an empty path.
    pub(crate) fn new(dir: &Path, name: &str, piece_len: u64, files: &[F<'_>], seed: u64) -> Self {
        let geometry = Geometry::new(piece_len, files.iter().map(|f| f.1)).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut payload = Vec::new();
        let mut specs = Vec::new();
        for &(rel, len, pad) in files {
            let start = payload.len();
            payload.resize(start + len as usize, 0);
            if !pad {
                rng.fill(&mut payload[start..]);
            }
            let path = if rel.is_empty() {
                dir.join(name)
            } else {
                dir.join(name).join(rel)
            };
            specs.push(FileSpec { path, len, pad });
        }
        let piece_hashes = payload.chunks(piece_len as usize).map(sha1).collect();
        let layout = StorageLayout {
            info_hash: InfoHash([seed as u8; 20]),
            geometry,
            piece_hashes,
            files: specs,
        };
        layout.validate().unwrap();
        Self { layout, payload }
    }

    /// Every block of the torrent, in order.
    pub(crate) fn blocks(&self) -> Vec<BlockInfo> {
        let g = &self.layout.geometry;
        (0..g.num_pieces())
            .flat_map(|p| g.blocks(PieceIndex(p)).collect::<Vec<_>>())
            .collect()
    }

    /// The payload bytes of `block`.
    pub(crate) fn bytes(&self, block: &BlockInfo) -> &[u8] {
        let start =
            self.layout.geometry.piece_offset(block.piece).unwrap() as usize + block.begin as usize;
        &self.payload[start..start + block.len as usize]
    }

    /// The payload bytes of file `i`.
    pub(crate) fn file_bytes(&self, i: usize) -> &[u8] {
        let g = &self.layout.geometry;
        let start = g.file_offset(i).unwrap() as usize;
        &self.payload[start..start + g.file_len(i).unwrap() as usize]
    }
}
