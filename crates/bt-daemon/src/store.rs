//! The state folder on disk: the settings file, the journal of torrent records, and per
//! torrent its `.torrent`.
//!
//! ```text
//! <state-dir>/settings.json           the daemon's settings (see `Settings`)
//! <state-dir>/records.log             the torrents' records, one JSON line per change
//! <state-dir>/torrents/<hash>.torrent its metainfo, once known
//! ```
//!
//! A record is written before anything else learns of the torrent and removed last, so
//! after any crash the folder describes every torrent that was added. Records are
//! appended to `records.log` (`{"record": …}` or `{"removed": "<hash>"}` per line; the
//! last line for a hash wins), many in one `write`, so saving thousands of records costs
//! one system call and no new files; the journal is rewritten whole, atomically, at start
//! and when it has grown well past the torrents it describes. A `kill -9` loses nothing
//! written (the kernel has it); a torn last line, as a power cut can leave, is skipped.
//! `.torrent` files are renamed into place, so a reader finds the old or the new file.
//! Both reach the disk platter in batches ([`Store::flush`], every second): a power cut
//! loses at most the last second. Records of earlier versions (`torrents/<hash>.json`)
//! are read once and folded into the journal. Verified pieces live in the engine's
//! resume files beside the data, so nothing verified is fetched again.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bt_meta::InfoHash;
use serde::{Deserialize, Serialize};

use crate::record::TorrentRecord;

/// The daemon's state folder.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// Files replaced since the last [`Store::flush`].
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
    /// The journal's append handle (opened on first use) and the lines appended since it
    /// was last rewritten.
    journal: Arc<Mutex<(Option<fs::File>, usize)>>,
}

/// One line of the journal, as read.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    /// A torrent's record as it is now.
    Record(Box<TorrentRecord>),
    /// The torrent with this info-hash (hex) is gone.
    Removed(String),
}

/// One line of the journal, as written (the same shape as [`Line`]).
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum LineOut<'a> {
    Record(&'a TorrentRecord),
    Removed(String),
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
            journal: Default::default(),
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

    /// A record file of an earlier version.
    fn legacy_record_path(&self, hash: &InfoHash) -> PathBuf {
        self.dir
            .join("torrents")
            .join(format!("{}.json", hash.to_hex()))
    }

    /// The journal of records.
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("records.log")
    }

    /// Where a torrent's metainfo is kept.
    pub fn torrent_path(&self, hash: &InfoHash) -> PathBuf {
        self.dir
            .join("torrents")
            .join(format!("{}.torrent", hash.to_hex()))
    }

    /// Writes a torrent's record.
    pub fn save_record(&self, record: &TorrentRecord) -> io::Result<()> {
        self.save_records(std::slice::from_ref(record))
    }

    /// Writes records, all in one append to the journal.
    pub fn save_records(&self, records: &[TorrentRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut buf, &LineOut::Record(r)).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.append(&buf, records.len())
    }

    fn append(&self, buf: &[u8], lines: usize) -> io::Result<()> {
        let path = self.journal_path();
        {
            let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            if j.0.is_none() {
                j.0 = Some(
                    fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?,
                );
            }
            if let Some(f) = j.0.as_mut() {
                f.write_all(buf)?;
            }
            j.1 += lines;
        }
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path);
        Ok(())
    }

    /// Lines appended to the journal since it was last rewritten.
    pub fn journal_lines(&self) -> usize {
        self.journal.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Rewrites the journal as exactly `records` (atomically, durably) and drops the
    /// record files of earlier versions. The caller makes sure no record changes
    /// meanwhile.
    pub fn compact(&self, records: &[TorrentRecord]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut buf, &LineOut::Record(r)).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        write_atomic(&self.journal_path(), &buf)?;
        *j = (None, 0);
        drop(j);
        for r in records {
            let _ = fs::remove_file(self.legacy_record_path(&r.info_hash));
        }
        Ok(())
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

    /// Flushes every file replaced since the last call, and the folder, to the disk: one
    /// `syncfs` of the state folder's filesystem (thousands of records cost one journal
    /// commit, not an `fsync` each); where that fails, an `fsync` per file.
    pub fn flush(&self) {
        let paths = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
        if paths.is_empty() {
            return;
        }
        let dir = self.dir.join("torrents");
        if let Ok(d) = fs::File::open(&dir) {
            if rustix::fs::syncfs(&d).is_ok() {
                return;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in paths.iter().filter(|p| seen.insert(*p)) {
            // Gone since (removed, or replaced and flushed by a later write): nothing to do.
            if let Ok(f) = fs::File::open(p) {
                let _ = f.sync_all();
            }
        }
        sync_dir(&dir);
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
        for path in [self.torrent_path(hash), self.legacy_record_path(hash)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut line =
            serde_json::to_vec(&LineOut::Removed(hash.to_hex())).map_err(io::Error::other)?;
        line.push(b'\n');
        self.append(&line, 1)
    }

    /// Every record in the folder, and the files that could not be read.
    pub fn load_records(&self) -> io::Result<(Vec<TorrentRecord>, Vec<Unreadable>)> {
        let mut bad = Vec::new();
        let mut journal: HashMap<InfoHash, Option<TorrentRecord>> = HashMap::new();
        let path = self.journal_path();
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (n, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Line>(line) {
                Ok(Line::Record(r)) => {
                    journal.insert(r.info_hash, Some(*r));
                }
                Ok(Line::Removed(hex)) => match InfoHash::from_hex(&hex) {
                    Some(h) => {
                        journal.insert(h, None);
                    }
                    None => bad.push(Unreadable {
                        path: path.clone(),
                        reason: format!("line {}: {hex:?} is not an info-hash", n + 1),
                    }),
                },
                // The last line cut short by a power cut: the change it carried is lost.
                Err(_) if n == last => {}
                Err(e) => bad.push(Unreadable {
                    path: path.clone(),
                    reason: format!("line {}: {e}", n + 1),
                }),
            }
        }
        let mut records = Vec::new();
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
                // The journal, when it knows the torrent, is newer.
                Ok(r) if journal.contains_key(&r.info_hash) => {}
                Ok(r) => records.push(r),
                Err(reason) => bad.push(Unreadable { path, reason }),
            }
        }
        records.extend(journal.into_values().flatten());
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
    fn the_journal_keeps_the_last_line_per_torrent_and_skips_a_torn_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut a = TorrentRecord::new(hash(1), "a".into(), "/d".into(), 1);
        let b = TorrentRecord::new(hash(2), "b".into(), "/d".into(), 2);
        let c = TorrentRecord::new(hash(3), "c".into(), "/d".into(), 3);
        store
            .save_records(&[a.clone(), b.clone(), c.clone()])
            .unwrap();
        a.uploaded = 99;
        store.save_record(&a).unwrap();
        store.remove(&hash(2)).unwrap();
        assert_eq!(store.journal_lines(), 5);
        // A power cut in the middle of an append.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(store.journal_path())
            .unwrap();
        f.write_all(br#"{"record":{"info_hash":"0303"#).unwrap();
        let (mut records, bad) = store.load_records().unwrap();
        records.sort_by_key(|r| r.added_on);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(records, [a.clone(), c.clone()]);

        // A damaged line in the middle is reported; the rest still loads.
        let mut text = fs::read(store.journal_path()).unwrap();
        text.splice(0..0, b"garbage\n".iter().copied());
        fs::write(store.journal_path(), &text).unwrap();
        let (records, bad) = store.load_records().unwrap();
        assert_eq!(records.len(), 2);
        assert!(bad[0].reason.starts_with("line 1"), "{bad:?}");

        // Rewritten whole: only the torrents given, and the count starts again.
        store.compact(std::slice::from_ref(&c)).unwrap();
        assert_eq!(store.journal_lines(), 0);
        assert_eq!(store.load_records().unwrap().0, std::slice::from_ref(&c));
        store.save_record(&a).unwrap();
        assert_eq!(store.load_records().unwrap().0.len(), 2);
    }

    #[test]
    fn records_of_earlier_versions_are_read_and_folded_into_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = TorrentRecord::new(hash(4), "old".into(), "/d".into(), 4);
        let legacy = store.legacy_record_path(&hash(4));
        fs::write(&legacy, serde_json::to_vec(&old).unwrap()).unwrap();
        let (records, _) = store.load_records().unwrap();
        assert_eq!(records, std::slice::from_ref(&old));
        store.compact(&records).unwrap();
        assert!(!legacy.exists());
        assert_eq!(store.load_records().unwrap().0, [old]);
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
