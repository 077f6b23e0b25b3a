//! The state folder on disk: the settings file, and per torrent its record and its
//! `.torrent`, each written atomically so a torn write or a `kill -9` never loses the list.
//!
//! ```text
//! <state-dir>/settings.json          the daemon's settings (see `Settings`)
//! <state-dir>/torrents/<hash>.json   one torrent's record (see `TorrentRecord`)
//! <state-dir>/torrents/<hash>.torrent its metainfo, once known
//! ```
//!
//! A record is written before anything else learns of the torrent and removed last, so
//! after any crash the folder describes every torrent that was added. Records and
//! `.torrent` files are replaced by a rename, so a `kill -9` finds either the old or the
//! new file; they reach the disk platter in batches ([`Store::flush`], every second), so
//! adding thousands of torrents does not cost thousands of `fsync`s. A power cut loses at
//! most the changes of the last second. Verified pieces live
//! in the engine's resume files beside the data, so nothing verified is fetched again.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bt_meta::InfoHash;

use crate::record::TorrentRecord;

/// The daemon's state folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Files replaced since the last [`Store::flush`].
    unsynced: std::sync::Arc<std::sync::Mutex<Vec<PathBuf>>>,
}

/// A record that could not be read back, and why; the daemon logs it and goes on.
#[derive(Debug)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

impl Store {
    /// Opens (creating) the state folder `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Store> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("torrents"))?;
        Ok(Store {
            dir,
            unsynced: Default::default(),
        })
    }

    /// The state folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the settings are kept.
    pub fn settings_path(&self) -> PathBuf {
        self.dir.join("settings.json")
    }

    fn record_path(&self, hash: &InfoHash) -> PathBuf {
        self.dir
            .join("torrents")
            .join(format!("{}.json", hash.to_hex()))
    }

    /// Where a torrent's metainfo is kept.
    pub fn torrent_path(&self, hash: &InfoHash) -> PathBuf {
        self.dir
            .join("torrents")
            .join(format!("{}.torrent", hash.to_hex()))
    }

    /// Writes a torrent's record.
    pub fn save_record(&self, record: &TorrentRecord) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        self.replace(self.record_path(&record.info_hash), &json)
    }

    /// Writes a torrent's metainfo file.
    pub fn save_torrent(&self, hash: &InfoHash, bytes: &[u8]) -> io::Result<()> {
        self.replace(self.torrent_path(hash), bytes)
    }

    /// Replaces `path` by a rename and notes it for the next [`Store::flush`].
    fn replace(&self, path: PathBuf, bytes: &[u8]) -> io::Result<()> {
        replace_file(&path, bytes, false)?;
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path);
        Ok(())
    }

    /// Whether files were replaced since the last [`Store::flush`].
    pub fn has_unsynced(&self) -> bool {
        !self
            .unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Flushes every file replaced since the last call, then the folder, to the disk.
    pub fn flush(&self) {
        let paths = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
        if paths.is_empty() {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for p in paths.iter().filter(|p| seen.insert(*p)) {
            // Gone since (removed, or replaced and flushed by a later write): nothing to do.
            if let Ok(f) = fs::File::open(p) {
                let _ = f.sync_all();
            }
        }
        sync_dir(&self.dir.join("torrents"));
    }

    /// The metainfo file of a torrent, if it was saved.
    pub fn load_torrent(&self, hash: &InfoHash) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.torrent_path(hash)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Forgets a torrent: its metainfo first, its record last.
    pub fn remove(&self, hash: &InfoHash) -> io::Result<()> {
        for path in [self.torrent_path(hash), self.record_path(hash)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        sync_dir(&self.dir.join("torrents"));
        Ok(())
    }

    /// Every record in the folder, and the files that could not be read.
    pub fn load_records(&self) -> io::Result<(Vec<TorrentRecord>, Vec<Unreadable>)> {
        let mut records = Vec::new();
        let mut bad = Vec::new();
        for entry in fs::read_dir(self.dir.join("torrents"))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.contains(".tmp") {
                // A write that never finished; the previous version, if any, is intact.
                let _ = fs::remove_file(&path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<TorrentRecord>(&b).map_err(|e| e.to_string())
                })
                .and_then(|r| {
                    if path.file_stem().and_then(|s| s.to_str()) == Some(&r.info_hash.to_hex()) {
                        Ok(r)
                    } else {
                        Err("its info-hash does not match its file name".to_string())
                    }
                });
            match parsed {
                Ok(r) => records.push(r),
                Err(reason) => bad.push(Unreadable { path, reason }),
            }
        }
        records.sort_by_key(|r| (r.queue_position, r.added_on));
        Ok((records, bad))
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file:
/// write a temporary file beside it, flush it to disk, rename it over, flush the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, true)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`; with
/// `durable`, flushes the file before the rename and the folder after it.
fn replace_file(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write: two writers of one file never share a temporary.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp{}-{n}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if durable {
        sync_dir(dir);
    }
    Ok(())
}

/// Flushes a folder's entries (best effort: not every filesystem allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn records_round_trip_and_leftover_temporaries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut a = TorrentRecord::new(hash(1), "a".into(), "/d".into(), 10);
        a.queue_position = 2;
        let b = TorrentRecord::new(hash(2), "b".into(), "/d".into(), 5);
        store.save_record(&a).unwrap();
        store.save_record(&b).unwrap();
        // A write cut off half way, as a kill -9 leaves it.
        fs::write(dir.path().join("torrents/.x.json.tmp99"), b"{\"info_h").unwrap();
        // A record damaged by something else is reported, not fatal.
        fs::write(
            dir.path()
                .join(format!("torrents/{}.json", hash(3).to_hex())),
            b"not json",
        )
        .unwrap();
        let (records, bad) = store.load_records().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].info_hash, hash(2), "queue order");
        assert_eq!(records[1], a);
        assert_eq!(bad.len(), 1);
        assert!(!dir.path().join("torrents/.x.json.tmp99").exists());
        store.remove(&hash(1)).unwrap();
        assert_eq!(store.load_records().unwrap().0.len(), 1);
    }

    #[test]
    fn a_record_under_another_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = TorrentRecord::new(hash(1), "a".into(), "/d".into(), 0);
        let json = serde_json::to_vec(&rec).unwrap();
        fs::write(
            dir.path()
                .join(format!("torrents/{}.json", hash(9).to_hex())),
            json,
        )
        .unwrap();
        let (records, bad) = store.load_records().unwrap();
        assert!(records.is_empty());
        assert!(bad[0].reason.contains("does not match"), "{:?}", bad[0]);
    }
}
