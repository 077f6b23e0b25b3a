//! [`StorageLayout`]: what [`TorrentStorage`](super::TorrentStorage) needs to know of a torrent.

use std::path::{Component, Path, PathBuf};

use bt_meta::{Geometry, InfoHash};

use super::error::StorageError;
use super::file::FileSpec;

/// The folder under a download folder where bt keeps its own state (resume files).
pub const STATE_DIR: &str = ".bt";

/// What a torrent named [`STATE_DIR`] is stored as instead, so its files and bt's state
/// never share a folder (a torrent could otherwise overwrite a resume file, or lose a
/// verified file of its own to one).
pub const STATE_DIR_STANDIN: &str = "_.bt";

/// A torrent's identity, piece geometry, piece hashes and files (with their paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageLayout {
    /// The v1 info-hash (recorded in resume data).
    pub info_hash: InfoHash,
    /// Pieces, blocks and where they fall in the files.
    pub geometry: Geometry,
    /// The SHA-1 of every piece.
    pub piece_hashes: Vec<[u8; 20]>,
    /// Every file in torrent order, pad files included.
    pub files: Vec<FileSpec>,
}

impl StorageLayout {
    /// The layout of `meta` with files placed under `dir` the way other clients do:
    /// `dir/<name>` for a single-file torrent, `dir/<name>/<path...>` for a multi-file one,
    /// using `bt-meta`'s sanitized paths, so nothing lands outside `dir`. A torrent named
    /// [`STATE_DIR`] goes to [`STATE_DIR_STANDIN`].
    ///
    /// Fails for a torrent without v1 piece hashes (v2-only), which this storage cannot
    /// verify. Symlink entries (BEP 47 `l`) carry no data and are not created.
    pub fn from_metainfo(meta: &bt_meta::Metainfo, dir: &Path) -> Result<Self, StorageError> {
        let info_hash = meta.info_hash.ok_or(StorageError::Unsupported {
            what: "v2-only torrent (no SHA-1 piece hashes)",
        })?;
        let files = meta
            .info
            .files()
            .iter()
            .map(|f| FileSpec {
                path: outside_state_dir(dir, f.path_under(dir)),
                len: f.length(),
                pad: f.is_pad() || f.attr().symlink,
            })
            .collect();
        let layout = Self {
            info_hash,
            geometry: meta.info.geometry().clone(),
            piece_hashes: meta.info.pieces().copied().collect(),
            files,
        };
        layout.validate()?;
        Ok(layout)
    }

    /// Moves files to other paths under `dir`: each entry is a file index and its
    /// path's components (sanitized, so the file stays under `dir`). Two files may not
    /// share a path.
    pub fn place(
        &mut self,
        dir: &Path,
        paths: &[(usize, Vec<String>)],
    ) -> Result<(), StorageError> {
        for (index, components) in paths {
            let file = self
                .files
                .get_mut(*index)
                .ok_or(StorageError::Unsupported {
                    what: "a file path for a file index the torrent does not have",
                })?;
            if components.is_empty() {
                return Err(StorageError::Unsupported {
                    what: "an empty file path",
                });
            }
            file.path = outside_state_dir(dir, bt_meta::path::join_under(dir, components));
        }
        if !paths.is_empty() {
            let mut seen = std::collections::HashSet::new();
            if !self
                .files
                .iter()
                .filter(|f| !f.pad)
                .all(|f| seen.insert(&f.path))
            {
                return Err(StorageError::Unsupported {
                    what: "two files at one path",
                });
            }
        }
        Ok(())
    }

    /// Checks that the parts agree: one hash per piece, one file per geometry file, each
    /// of the geometry's length.
    pub fn validate(&self) -> Result<(), StorageError> {
        let g = &self.geometry;
        let mismatch = |what, expected: u64, found: u64| {
            Err(StorageError::LayoutMismatch {
                what,
                expected,
                found,
            })
        };
        if self.piece_hashes.len() as u64 != u64::from(g.num_pieces()) {
            return mismatch(
                "piece hashes",
                u64::from(g.num_pieces()),
                self.piece_hashes.len() as u64,
            );
        }
        if self.files.len() != g.num_files() {
            return mismatch("files", g.num_files() as u64, self.files.len() as u64);
        }
        for (i, f) in self.files.iter().enumerate() {
            let len = g.file_len(i).unwrap_or(0);
            if f.len != len {
                return mismatch("file length", len, f.len);
            }
        }
        Ok(())
    }

    /// The files' lengths, pad files included (what [`MemoryBackend::new`] takes).
    ///
    /// [`MemoryBackend::new`]: super::MemoryBackend::new
    pub fn file_lens(&self) -> Vec<u64> {
        self.files.iter().map(|f| f.len).collect()
    }
}

/// `path` (under `dir`) with a first component of [`STATE_DIR`] renamed
/// [`STATE_DIR_STANDIN`].
fn outside_state_dir(dir: &Path, path: PathBuf) -> PathBuf {
    let Ok(rel) = path.strip_prefix(dir) else {
        return path;
    };
    let mut parts = rel.components();
    match parts.next() {
        Some(Component::Normal(first)) if first == STATE_DIR => {
            dir.join(STATE_DIR_STANDIN).join(parts.as_path())
        }
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Component;

    use bt_bencode::{Dict, Value};
    use bt_meta::{Metainfo, PieceIndex};

    use super::*;
    use crate::storage::{sha1, TorrentStorage};

    fn file(len: usize, path: &[&str], attr: Option<&str>) -> Value<'static> {
        let mut d = Dict::new();
        d.insert(&b"length"[..], Value::Int(len as i64));
        let path = path
            .iter()
            .map(|p| Value::owned_bytes(p.as_bytes()))
            .collect();
        d.insert(&b"path"[..], Value::List(path));
        if let Some(a) = attr {
            d.insert(&b"attr"[..], Value::owned_bytes(a.as_bytes()));
        }
        Value::Dict(d)
    }

    /// A v1 torrent of `payload` with piece length 16 KiB; `files` None = single file.
    fn torrent(name: &str, payload: &[u8], files: Option<Vec<Value<'static>>>) -> Metainfo {
        let mut info = Dict::new();
        info.insert(&b"name"[..], Value::owned_bytes(name.as_bytes()));
        info.insert(&b"piece length"[..], Value::Int(16384));
        let hashes: Vec<u8> = payload.chunks(16384).flat_map(sha1).collect();
        info.insert(&b"pieces"[..], Value::from(hashes));
        match files {
            None => info.insert(&b"length"[..], Value::Int(payload.len() as i64)),
            Some(f) => info.insert(&b"files"[..], Value::List(f)),
        }
        let mut root = Dict::new();
        root.insert(&b"info"[..], Value::Dict(info));
        Metainfo::from_bytes(&Value::Dict(root).encode()).unwrap()
    }

    #[test]
    fn a_torrent_named_like_the_state_folder_goes_elsewhere() {
        let dir = Path::new("/downloads");
        let single = torrent(STATE_DIR, &[7; 100], None);
        let l = StorageLayout::from_metainfo(&single, dir).unwrap();
        assert_eq!(l.files[0].path, dir.join(STATE_DIR_STANDIN));
        let files = vec![file(5, &["x.resume"], None), file(95, &[".bt", "y"], None)];
        let multi = torrent(STATE_DIR, &[7; 100], Some(files));
        let l = StorageLayout::from_metainfo(&multi, dir).unwrap();
        assert_eq!(l.files[0].path, dir.join("_.bt/x.resume"));
        // Only the top level is bt's: deeper folders keep their names.
        assert_eq!(l.files[1].path, dir.join("_.bt/.bt/y"));
        let other = torrent(".btx", &[7; 100], None);
        let l = StorageLayout::from_metainfo(&other, dir).unwrap();
        assert_eq!(l.files[0].path, dir.join(".btx"));
    }

    #[test]
    fn placed_files_stay_under_the_folder_and_never_share_a_path() {
        let dir = Path::new("/downloads");
        let files = vec![file(5, &["a.txt"], None), file(95, &["b.txt"], None)];
        let meta = torrent("t", &[7; 100], Some(files));
        let mut l = StorageLayout::from_metainfo(&meta, dir).unwrap();
        l.place(dir, &[(0, vec!["t".into(), "sub".into(), "A.txt".into()])])
            .unwrap();
        assert_eq!(l.files[0].path, dir.join("t/sub/A.txt"));
        l.place(dir, &[(1, vec!["..".into(), "..".into(), "etc".into()])])
            .unwrap();
        assert!(l.files[1].path.starts_with(dir), "{:?}", l.files[1].path);
        let clash = l.place(dir, &[(1, vec!["t".into(), "sub".into(), "A.txt".into()])]);
        assert!(clash.is_err());
        assert!(l.place(dir, &[(9, vec!["x".into()])]).is_err());
    }

    #[test]
    fn single_file_goes_to_dir_slash_name() {
        let dir = Path::new("/downloads");
        let meta = torrent("movie.mkv", &[7; 100], None);
        let l = StorageLayout::from_metainfo(&meta, dir).unwrap();
        assert_eq!(l.files.len(), 1);
        assert_eq!(l.files[0].path, dir.join("movie.mkv"));
        assert_eq!(l.files[0].len, 100);
        assert_eq!(l.info_hash, meta.info_hash.unwrap());
        assert_eq!(l.piece_hashes.len(), 1);
    }

    #[test]
    fn multi_file_goes_under_dir_slash_name_and_never_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut payload = vec![1u8; 5];
        payload.extend([0u8; 16379]);
        payload.extend(b"xyz");
        let files = vec![
            file(5, &["a", "b.txt"], None),
            file(16379, &[".pad", "16379"], Some("p")),
            file(3, &["..", "..", "etc", "passwd"], None),
            file(0, &["link"], Some("l")),
        ];
        let meta = torrent("album", &payload, Some(files));
        let l = StorageLayout::from_metainfo(&meta, dir).unwrap();
        assert_eq!(l.files[0].path, dir.join("album/a/b.txt"));
        assert!(l.files[1].pad && !l.files[0].pad && !l.files[2].pad);
        let escaped = &l.files[2].path;
        assert!(
            escaped.starts_with(dir.join("album")),
            "{}",
            escaped.display()
        );
        let rest = escaped.strip_prefix(dir).unwrap();
        assert!(
            rest.components().all(|c| matches!(c, Component::Normal(_))),
            "{}",
            rest.display()
        );
        assert!(
            l.files[3].pad,
            "a symlink entry holds no data and is not created"
        );

        let s = TorrentStorage::open_metainfo(&meta, dir).unwrap();
        assert_eq!(s.layout(), &l);
        s.write_block(PieceIndex(0), 0, &payload[..16384]).unwrap();
        s.write_block(PieceIndex(1), 0, &payload[16384..]).unwrap();
        assert!(s.verify_piece(PieceIndex(0)).unwrap());
        assert!(s.verify_piece(PieceIndex(1)).unwrap());
        assert_eq!(std::fs::read(dir.join("album/a/b.txt")).unwrap(), [1; 5]);
        assert_eq!(std::fs::read(escaped).unwrap(), b"xyz");
        assert!(!dir.join("album/.pad").exists());
        assert!(!dir.join("album/link").exists());
    }

    #[test]
    fn parts_that_disagree_are_refused() {
        let meta = torrent("t", &[7; 40000], None);
        let good = StorageLayout::from_metainfo(&meta, Path::new("d")).unwrap();
        let mut l = good.clone();
        l.piece_hashes.pop();
        assert!(matches!(
            l.validate(),
            Err(StorageError::LayoutMismatch {
                what: "piece hashes",
                ..
            })
        ));
        let mut l = good.clone();
        l.files[0].len += 1;
        assert!(matches!(
            l.validate(),
            Err(StorageError::LayoutMismatch {
                what: "file length",
                ..
            })
        ));
        let mut l = good;
        l.files.push(l.files[0].clone());
        assert!(matches!(
            TorrentStorage::new(l, Box::new(crate::storage::MemoryBackend::new(&[]))),
            Err(StorageError::LayoutMismatch { what: "files", .. })
        ));
    }
}
