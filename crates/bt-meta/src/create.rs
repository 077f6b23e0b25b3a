//! Creating (v1) torrents from a file or a folder.
//!
//! - Files are found recursively and ordered by their path, element by element, each
//!   compared as bytes, so the same folder always gives the same torrent.
//! - Nothing is skipped silently: hidden files (dot files) are included; symbolic links
//!   are followed (a link to a folder that leads back to one of its parents is an
//!   error); anything that is neither a file nor a folder (socket, FIFO, device) is an
//!   error. Empty folders cannot be described by a torrent and are left out.
//! - The piece length is chosen as common clients do (a power of two from 16 KiB to
//!   16 MiB, aiming at 1000-2000 pieces) unless given.
//! - Hashing uses every core (`std::thread::scope`), each thread reading runs of pieces
//!   in large chunks; progress is reported on the calling thread.
//! - The output is canonical bencode; the info-hash is the SHA-1 of its `info` bytes.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;

use bt_bencode::{Dict, Value};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::geometry::{Geometry, PieceIndex};
use crate::hash::InfoHash;

/// Smallest piece length chosen or accepted: 16 KiB.
pub const MIN_CREATE_PIECE_LEN: u32 = 16 * 1024;
/// Largest piece length chosen or accepted: 16 MiB.
pub const MAX_CREATE_PIECE_LEN: u32 = 16 * 1024 * 1024;
/// The `created by` written by default.
pub const CREATED_BY: &str = concat!("bt/", env!("CARGO_PKG_VERSION"));

/// Bytes each hashing work unit reads (whole pieces, at least one).
const CHUNK_LEN: u64 = 8 * 1024 * 1024;

/// What to put in the torrent besides the files.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Piece length; `None` chooses one from the total size ([`auto_piece_len`]).
    pub piece_len: Option<u32>,
    /// Trackers by tier. `announce` is the first tracker; `announce-list` is written
    /// when there is more than one.
    pub trackers: Vec<Vec<String>>,
    /// Web seeds (`url-list`, BEP 19).
    pub web_seeds: Vec<String>,
    /// The `private` flag (BEP 27).
    pub private: bool,
    /// `comment`.
    pub comment: Option<String>,
    /// `creation date` in seconds since the Unix epoch (`None`: not written).
    pub creation_date: Option<i64>,
    /// `created by` (`None`: not written). Defaults to `bt/<version>`.
    pub created_by: Option<String>,
    /// `info.source` (private trackers use it to make info-hashes distinct).
    pub source: Option<String>,
    /// Hashing threads; 0 uses every core.
    pub threads: usize,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            piece_len: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            creation_date: None,
            created_by: Some(CREATED_BY.to_string()),
            source: None,
            threads: 0,
        }
    }
}

/// One file to put in the torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Where it is on disk.
    pub fs_path: PathBuf,
    /// Its path inside the torrent (below the torrent's folder), raw bytes.
    pub components: Vec<Vec<u8>>,
    /// Its length when scanned.
    pub len: u64,
}

/// The files found under a path, in torrent order.
#[derive(Clone, Debug)]
pub struct Source {
    /// The torrent's name: the file's or folder's name.
    pub name: Vec<u8>,
    /// A single file (no folder).
    pub single_file: bool,
    /// The files, sorted by path.
    pub files: Vec<SourceFile>,
}

/// A created torrent.
#[derive(Clone, Debug)]
pub struct CreatedTorrent {
    /// The `.torrent` bytes (canonical bencode).
    pub bytes: Vec<u8>,
    /// Its v1 info-hash.
    pub info_hash: InfoHash,
    /// The piece length used.
    pub piece_len: u32,
    /// Number of pieces.
    pub num_pieces: u32,
    /// Total bytes.
    pub total_len: u64,
}

/// The piece length common clients pick: the smallest power of two from 16 KiB up to
/// 16 MiB that gives at most 2000 pieces (so 1000-2000 pieces unless a bound is hit).
pub fn auto_piece_len(total_len: u64) -> u32 {
    let mut len = MIN_CREATE_PIECE_LEN;
    while len < MAX_CREATE_PIECE_LEN && total_len.div_ceil(u64::from(len)) > 2000 {
        len *= 2;
    }
    len
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[cfg(unix)]
fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

impl Source {
    /// Finds the files under `path` (a file or a folder).
    pub fn scan(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        let name = match path.file_name() {
            Some(n) => name_bytes(n),
            None => {
                let canonical = std::fs::canonicalize(path).map_err(io_err(path))?;
                canonical
                    .file_name()
                    .map(name_bytes)
                    .ok_or(Error::Unsupported {
                        path: path.to_path_buf(),
                        reason: "has no name to give the torrent",
                    })?
            }
        };
        if meta.is_file() {
            return Ok(Source {
                name,
                single_file: true,
                files: vec![SourceFile {
                    fs_path: path.to_path_buf(),
                    components: Vec::new(),
                    len: meta.len(),
                }],
            });
        }
        if !meta.is_dir() {
            return Err(Error::Unsupported {
                path: path.to_path_buf(),
                reason: "is neither a file nor a folder",
            });
        }
        let mut files = Vec::new();
        let mut ancestors = HashSet::new();
        walk(path, &mut Vec::new(), &mut ancestors, &mut files)?;
        files.sort_by(|a, b| a.components.cmp(&b.components));
        Ok(Source {
            name,
            single_file: false,
            files,
        })
    }

    /// Total bytes.
    pub fn total_len(&self) -> u64 {
        self.files.iter().map(|f| f.len).sum()
    }

    /// Hashes the files and writes the torrent. `progress` is called on this thread
    /// with the number of bytes hashed so far.
    pub fn create(
        &self,
        opts: &CreateOptions,
        mut progress: impl FnMut(u64),
    ) -> Result<CreatedTorrent> {
        let total = self.total_len();
        if total == 0 {
            return Err(Error::EmptyTorrent);
        }
        let piece_len = match opts.piece_len {
            None => auto_piece_len(total),
            Some(len)
                if len.is_power_of_two()
                    && (MIN_CREATE_PIECE_LEN..=MAX_CREATE_PIECE_LEN).contains(&len) =>
            {
                len
            }
            Some(len) => {
                return Err(Error::InvalidOption(format!(
                    "piece length {len} must be a power of two from 16 KiB to 16 MiB"
                )))
            }
        };
        let geometry = Geometry::new(u64::from(piece_len), self.files.iter().map(|f| f.len))?;
        let pieces = hash_pieces(&self.files, &geometry, opts.threads, &mut progress)?;

        let mut info = Dict::new();
        if self.single_file {
            info.insert(&b"length"[..], Value::Int(total as i64));
        } else {
            let files = self
                .files
                .iter()
                .map(|f| {
                    let mut d = Dict::new();
                    d.insert(&b"length"[..], Value::Int(f.len as i64));
                    let path = f.components.iter().map(|c| Value::from(c.clone()));
                    d.insert(&b"path"[..], Value::List(path.collect()));
                    Value::Dict(d)
                })
                .collect();
            info.insert(&b"files"[..], Value::List(files));
        }
        info.insert(&b"name"[..], Value::from(self.name.clone()));
        info.insert(&b"piece length"[..], Value::Int(i64::from(piece_len)));
        info.insert(&b"pieces"[..], Value::from(pieces.concat()));
        if opts.private {
            info.insert(&b"private"[..], Value::Int(1));
        }
        if let Some(source) = &opts.source {
            info.insert(&b"source"[..], Value::from(source.clone().into_bytes()));
        }
        let info = Value::Dict(info);
        let info_hash = InfoHash(Sha1::digest(info.encode()).into());

        let mut top = Dict::new();
        let tiers: Vec<Vec<String>> = opts
            .trackers
            .iter()
            .map(|t| t.iter().filter(|u| !u.trim().is_empty()).cloned().collect())
            .filter(|t: &Vec<String>| !t.is_empty())
            .collect();
        if let Some(first) = tiers.first().and_then(|t| t.first()) {
            top.insert(&b"announce"[..], Value::from(first.clone().into_bytes()));
        }
        if tiers.iter().map(Vec::len).sum::<usize>() > 1 {
            let list = tiers
                .iter()
                .map(|t| {
                    Value::List(
                        t.iter()
                            .map(|u| Value::from(u.clone().into_bytes()))
                            .collect(),
                    )
                })
                .collect();
            top.insert(&b"announce-list"[..], Value::List(list));
        }
        if let Some(c) = &opts.comment {
            top.insert(&b"comment"[..], Value::from(c.clone().into_bytes()));
        }
        if let Some(c) = &opts.created_by {
            top.insert(&b"created by"[..], Value::from(c.clone().into_bytes()));
        }
        if let Some(d) = opts.creation_date {
            top.insert(&b"creation date"[..], Value::Int(d));
        }
        top.insert(&b"info"[..], info);
        if !opts.web_seeds.is_empty() {
            let seeds = opts
                .web_seeds
                .iter()
                .map(|u| Value::from(u.clone().into_bytes()))
                .collect();
            top.insert(&b"url-list"[..], Value::List(seeds));
        }
        Ok(CreatedTorrent {
            bytes: Value::Dict(top).encode(),
            info_hash,
            piece_len,
            num_pieces: geometry.num_pieces(),
            total_len: total,
        })
    }
}

/// Scans `path` and creates the torrent: [`Source::scan`] then [`Source::create`].
pub fn create_torrent(
    path: &Path,
    opts: &CreateOptions,
    progress: impl FnMut(u64),
) -> Result<CreatedTorrent> {
    Source::scan(path)?.create(opts, progress)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<Vec<u8>>,
    ancestors: &mut HashSet<PathBuf>,
    out: &mut Vec<SourceFile>,
) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    if !ancestors.insert(canonical.clone()) {
        return Err(Error::Unsupported {
            path: dir.to_path_buf(),
            reason: "is a link back to a folder that contains it",
        });
    }
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        // Follows symbolic links.
        let meta = std::fs::metadata(&path).map_err(io_err(&path))?;
        prefix.push(name_bytes(&entry.file_name()));
        if meta.is_dir() {
            walk(&path, prefix, ancestors, out)?;
        } else if meta.is_file() {
            out.push(SourceFile {
                fs_path: path,
                components: prefix.clone(),
                len: meta.len(),
            });
        } else {
            return Err(Error::Unsupported {
                path,
                reason: "is neither a file nor a folder",
            });
        }
        prefix.pop();
    }
    ancestors.remove(&canonical);
    Ok(())
}

enum Report {
    Progress(u64),
    Done(Result<Vec<(u32, Vec<[u8; 20]>)>>),
}

/// SHA-1 of every piece, on `threads` threads (0: all cores).
fn hash_pieces(
    files: &[SourceFile],
    geometry: &Geometry,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<[u8; 20]>> {
    let num_pieces = geometry.num_pieces();
    let piece_len = u64::from(geometry.nominal_piece_len());
    let batch = (CHUNK_LEN / piece_len).max(1) as u32;
    let batches = num_pieces.div_ceil(batch) as usize;
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, batches.max(1));
    let next = AtomicU32::new(0);
    let abort = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let mut results = Vec::new();
    let mut first_error = None;
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, abort) = (&next, &abort);
            s.spawn(move || {
                let result = hash_worker(files, geometry, batch, next, abort, &tx);
                if result.is_err() {
                    abort.store(true, Ordering::Relaxed);
                }
                let _ = tx.send(Report::Done(result));
            });
        }
        drop(tx);
        let mut done = 0u64;
        for report in rx {
            match report {
                Report::Progress(n) => {
                    done += n;
                    progress(done);
                }
                Report::Done(Ok(mut r)) => results.append(&mut r),
                Report::Done(Err(e)) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    results.sort_unstable_by_key(|(start, _)| *start);
    let pieces: Vec<[u8; 20]> = results.into_iter().flat_map(|(_, h)| h).collect();
    debug_assert_eq!(pieces.len(), num_pieces as usize);
    Ok(pieces)
}

fn hash_worker(
    files: &[SourceFile],
    geometry: &Geometry,
    batch: u32,
    next: &AtomicU32,
    abort: &AtomicBool,
    tx: &mpsc::Sender<Report>,
) -> Result<Vec<(u32, Vec<[u8; 20]>)>> {
    let num_pieces = geometry.num_pieces();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut open: Option<(usize, File)> = None;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Ok(out);
        }
        let first = next.fetch_add(batch, Ordering::Relaxed);
        if first >= num_pieces {
            return Ok(out);
        }
        let last = (first + batch).min(num_pieces) - 1;
        let piece_len = u64::from(geometry.nominal_piece_len());
        let start = u64::from(first) * piece_len;
        let end = ((u64::from(last) + 1) * piece_len).min(geometry.total_len());
        buf.resize((end - start) as usize, 0);
        let mut at = 0usize;
        for span in geometry.byte_spans(start, end - start) {
            let f = &files[span.file];
            let file = match &mut open {
                Some((i, file)) if *i == span.file => file,
                slot => {
                    let file = File::open(&f.fs_path).map_err(io_err(&f.fs_path))?;
                    &mut slot.insert((span.file, file)).1
                }
            };
            file.seek(SeekFrom::Start(span.offset))
                .map_err(io_err(&f.fs_path))?;
            let dest = &mut buf[at..at + span.len as usize];
            file.read_exact(dest).map_err(|e| {
                let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(e.kind(), "file shrank while hashing")
                } else {
                    e
                };
                io_err(&f.fs_path)(e)
            })?;
            at += span.len as usize;
        }
        let mut hashes = Vec::with_capacity((last - first + 1) as usize);
        let mut pos = 0usize;
        for p in first..=last {
            // ok: p <= last < num_pieces
            let len = geometry.piece_len(PieceIndex(p)).unwrap_or(0) as usize;
            hashes.push(Sha1::digest(&buf[pos..pos + len]).into());
            pos += len;
        }
        out.push((first, hashes));
        let _ = tx.send(Report::Progress(end - start));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_piece_lengths() {
        assert_eq!(auto_piece_len(1), 16 * 1024);
        assert_eq!(auto_piece_len(2000 * 16 * 1024), 16 * 1024);
        assert_eq!(auto_piece_len(2000 * 16 * 1024 + 1), 32 * 1024);
        let gib = 1u64 << 30;
        let l = auto_piece_len(gib);
        assert_eq!(l, 1 << 20);
        assert!((1000..=2000).contains(&gib.div_ceil(u64::from(l))));
        assert_eq!(auto_piece_len(1 << 50), MAX_CREATE_PIECE_LEN);
    }
}
