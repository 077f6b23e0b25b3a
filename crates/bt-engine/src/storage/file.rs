//! [`FileBackend`]: a torrent's files on disk, opened lazily, written sparse and positional.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::num::NonZeroU64;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::backend::{FileStamp, MTime, StorageBackend};
use super::handles::HandleCache;

/// Most buffers passed to one `pwritev` (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// How many files a [`FileBackend`] keeps open at once unless told otherwise.
pub const DEFAULT_MAX_OPEN_FILES: usize = 64;

/// One file as the backend sees it: where it goes, how long it is, whether it is padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// Full path on disk (already joined safely under the download folder).
    pub path: PathBuf,
    /// Length in bytes.
    pub len: u64,
    /// A BEP 47 pad file: never created, read as zeros, writes dropped.
    pub pad: bool,
}

/// Files on disk under a download folder.
///
/// A file is created (with its directories) on its first write and at once given its full
/// length with `set_len`, which makes it sparse; empty files are created by
/// [`prepare`](StorageBackend::prepare). Reads and writes are positional (`pread`/`pwrite`,
/// no seek, no lock) on handles kept in a bounded cache; a file opened only for reading is
/// reopened (and sized) when first written.
#[derive(Debug)]
pub struct FileBackend {
    dir: PathBuf,
    files: Vec<FileSpec>,
    handles: HandleCache,
    dirty: Vec<AtomicBool>,
    /// Held for a whole `sync`, so a sync that finds a file clean cannot return while
    /// another thread's sync of that file is still running.
    sync_lock: Mutex<()>,
}

impl FileBackend {
    /// A backend for `files` under the download folder `dir`, keeping at most
    /// [`DEFAULT_MAX_OPEN_FILES`] open.
    pub fn new(dir: impl Into<PathBuf>, files: Vec<FileSpec>) -> Self {
        Self::with_max_open_files(dir, files, DEFAULT_MAX_OPEN_FILES)
    }

    /// Like [`new`](Self::new) with a different bound on open files.
    pub fn with_max_open_files(
        dir: impl Into<PathBuf>,
        files: Vec<FileSpec>,
        max_open_files: usize,
    ) -> Self {
        let dirty = files.iter().map(|_| AtomicBool::new(false)).collect();
        Self {
            dir: dir.into(),
            files,
            handles: HandleCache::new(max_open_files),
            dirty,
            sync_lock: Mutex::new(()),
        }
    }

    /// The download folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files, in torrent order.
    pub fn files(&self) -> &[FileSpec] {
        &self.files
    }

    fn spec(&self, file: usize) -> io::Result<&FileSpec> {
        self.files.get(file).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no file with index {file}"),
            )
        })
    }

    /// A handle good for reading: the cached one, else the file opened read-only (a
    /// later write reopens it). Never creates the file.
    fn for_read(&self, file: usize) -> io::Result<Arc<File>> {
        if let Some((f, _)) = self.handles.get(file) {
            return Ok(f);
        }
        let f = Arc::new(File::open(&self.spec(file)?.path)?);
        self.handles.insert(file, Arc::clone(&f), false);
        Ok(f)
    }

    /// A handle good for writing, creating the file, its directories and its full
    /// (sparse) length if needed.
    fn for_write(&self, file: usize) -> io::Result<Arc<File>> {
        if let Some((f, true)) = self.handles.get(file) {
            return Ok(f);
        }
        let spec = self.spec(file)?;
        let f = Arc::new(create(spec)?);
        self.handles.insert(file, Arc::clone(&f), true);
        Ok(f)
    }

    /// [`for_write`](Self::for_write), with the file marked for the next
    /// [`sync`](StorageBackend::sync); `None` for a pad file.
    fn for_write_marked(&self, file: usize) -> io::Result<Option<Arc<File>>> {
        if self.spec(file)?.pad {
            return Ok(None);
        }
        let f = self.for_write(file)?;
        if let Some(d) = self.dirty.get(file) {
            if !d.load(Ordering::Relaxed) {
                d.store(true, Ordering::Relaxed);
            }
        }
        Ok(Some(f))
    }
}

/// Opens `spec` read-write, creating it and its parent directories, and gives it its
/// declared length (sparse when growing; a longer file is cut to size).
fn create(spec: &FileSpec) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&spec.path)
    };
    let f = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = spec.path.parent() {
                fs::create_dir_all(parent)?;
            }
            open()?
        }
        other => other?,
    };
    if f.metadata()?.len() != spec.len {
        f.set_len(spec.len)?;
    }
    Ok(f)
}

impl StorageBackend for FileBackend {
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.spec(file)?.pad {
            buf.fill(0);
            return Ok(());
        }
        self.for_read(file)?.read_exact_at(buf, offset)
    }

    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        let Some(f) = self.for_write_marked(file)? else {
            return Ok(()); // a pad file: nothing is stored
        };
        f.write_all_at(buf, offset)
    }

    fn write_vectored_at(&self, file: usize, offset: u64, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        let Some(f) = self.for_write_marked(file)? else {
            return Ok(()); // a pad file: nothing is stored
        };
        let mut at = offset;
        for group in bufs.chunks(MAX_IOVECS) {
            let total: usize = group.iter().map(|b| b.len()).sum();
            let n = rustix::io::retry_on_intr(|| rustix::io::pwritev(&*f, group, at))?;
            if n < total {
                // Short write (a full disk, a signal): the rest one buffer at a time, which
                // reports the error if there is one.
                let mut skip = n;
                let mut pos = at + n as u64;
                for b in group {
                    if skip >= b.len() {
                        skip -= b.len();
                        continue;
                    }
                    let rest = b.get(skip..).unwrap_or_default();
                    f.write_all_at(rest, pos)?;
                    pos += rest.len() as u64;
                    skip = 0;
                }
            }
            at += total as u64;
        }
        Ok(())
    }

    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>> {
        let spec = self.spec(file)?;
        if spec.pad {
            return Ok(None);
        }
        match fs::metadata(&spec.path) {
            Ok(m) if m.is_file() => Ok(Some(FileStamp {
                len: m.len(),
                mtime: MTime::from_system_time(m.modified()?),
            })),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn sync(&self) -> io::Result<()> {
        // Files written since the last sync, cached or not (an evicted handle was closed
        // without syncing, its pages are still dirty). Only syncs wait on this lock.
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        for (file, dirty) in self.dirty.iter().enumerate() {
            if dirty.swap(false, Ordering::AcqRel) {
                let res = self.for_read(file).and_then(|f| f.sync_data());
                if let Err(e) = res {
                    dirty.store(true, Ordering::Release);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
        // Only a file still open: one closed since was written and is not worth reopening.
        let (Some((f, _)), Some(len)) = (self.handles.get(file), NonZeroU64::new(len)) else {
            return Ok(());
        };
        // Dirty pages in the range are skipped by the kernel, never lost.
        rustix::fs::fadvise(&*f, offset, Some(len), rustix::fs::Advice::DontNeed)?;
        Ok(())
    }

    fn prepare(&self) -> io::Result<()> {
        let meta = fs::metadata(&self.dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "download folder is not a directory",
            ));
        }
        probe_writable(&self.dir)?;
        for spec in self.files.iter().filter(|s| s.len == 0 && !s.pad) {
            create(spec)?;
        }
        Ok(())
    }
}

/// Creates and removes a small file in `dir` to prove we may write there (a read-only
/// mount or missing permission shows up now, not at the first block).
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".bt-write-probe-{}", std::process::id()));
    let res = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|f| f.write_all_at(b"x", 0));
    let _ = fs::remove_file(&probe);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, rel: &str, len: u64, pad: bool) -> FileSpec {
        FileSpec {
            path: dir.join(rel),
            len,
            pad,
        }
    }

    #[test]
    fn creates_sparse_file_with_dirs_on_first_write() {
        let tmp = tempfile::tempdir().unwrap();
        let b = FileBackend::new(
            tmp.path(),
            vec![spec(tmp.path(), "t/a/b.bin", 1 << 20, false)],
        );
        assert_eq!(b.stamp(0).unwrap(), None);
        let mut buf = [0u8; 3];
        assert_eq!(
            b.read_at(0, 0, &mut buf).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(
            !tmp.path().join("t").exists(),
            "a read must not create anything"
        );
        b.write_at(0, 1000, b"xyz").unwrap();
        let m = fs::metadata(tmp.path().join("t/a/b.bin")).unwrap();
        assert_eq!(m.len(), 1 << 20);
        assert_eq!(b.stamp(0).unwrap().unwrap().len, 1 << 20);
        b.read_at(0, 1000, &mut buf).unwrap();
        assert_eq!(&buf, b"xyz");
        b.read_at(0, 0, &mut buf).unwrap();
        assert_eq!(buf, [0; 3]);
        b.sync().unwrap();
    }

    #[test]
    fn oversized_existing_file_is_cut_to_size_on_write() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), vec![7u8; 100]).unwrap();
        let b = FileBackend::new(tmp.path(), vec![spec(tmp.path(), "f", 10, false)]);
        let mut buf = [0u8; 2];
        b.read_at(0, 98, &mut buf).unwrap();
        assert_eq!(b.stamp(0).unwrap().unwrap().len, 100);
        b.write_at(0, 0, b"ab").unwrap();
        assert_eq!(
            fs::read(tmp.path().join("f")).unwrap(),
            b"ab\x07\x07\x07\x07\x07\x07\x07\x07"
        );
    }

    #[test]
    fn uncached_data_is_still_there_and_unopened_files_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let b = FileBackend::new(
            tmp.path(),
            vec![
                spec(tmp.path(), "a", 1 << 16, false),
                spec(tmp.path(), "b", 10, false),
            ],
        );
        let data: Vec<u8> = (0..1u32 << 16).map(|i| (i % 251) as u8).collect();
        b.write_at(0, 0, &data).unwrap();
        // Dirty pages are skipped, synced ones dropped: neither loses a byte.
        b.uncache(0, 0, 1 << 16).unwrap();
        b.sync().unwrap();
        b.uncache(0, 0, 1 << 16).unwrap();
        b.uncache(0, 0, 0).unwrap();
        let mut back = vec![0; 1 << 16];
        b.read_at(0, 0, &mut back).unwrap();
        assert_eq!(back, data);
        b.uncache(1, 0, 10).unwrap();
        assert!(
            !tmp.path().join("b").exists(),
            "uncache must not create a file"
        );
    }

    #[test]
    fn pad_files_never_touch_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let b = FileBackend::new(tmp.path(), vec![spec(tmp.path(), ".pad/5", 5, true)]);
        b.prepare().unwrap();
        b.write_at(0, 0, b"hello").unwrap();
        let mut buf = [1u8; 5];
        b.read_at(0, 0, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
        assert!(!tmp.path().join(".pad").exists());
        assert_eq!(b.stamp(0).unwrap(), None);
    }

    #[test]
    fn prepare_creates_empty_files_and_leaves_others_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let b = FileBackend::new(
            tmp.path(),
            vec![
                spec(tmp.path(), "t/empty", 0, false),
                spec(tmp.path(), "t/big", 9, false),
            ],
        );
        b.prepare().unwrap();
        assert_eq!(fs::metadata(tmp.path().join("t/empty")).unwrap().len(), 0);
        assert!(!tmp.path().join("t/big").exists());
        assert!(
            fs::read_dir(tmp.path()).unwrap().count() == 1,
            "probe file left behind"
        );
    }

    #[test]
    fn prepare_fails_on_missing_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nope");
        let b = FileBackend::new(&dir, vec![spec(&dir, "f", 1, false)]);
        assert_eq!(b.prepare().unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(!dir.exists());
    }

    #[test]
    fn handles_are_bounded_and_reopened() {
        let tmp = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..10)
            .map(|i| spec(tmp.path(), &format!("f{i}"), 4, false))
            .collect();
        let b = FileBackend::with_max_open_files(tmp.path(), files, 3);
        for round in 0..3u8 {
            for i in 0..10 {
                b.write_at(i, u64::from(round), &[round + i as u8]).unwrap();
            }
        }
        assert!(b.handles.len() <= 3);
        b.sync().unwrap();
        for i in 0..10u8 {
            let got = fs::read(tmp.path().join(format!("f{i}"))).unwrap();
            assert_eq!(got, [i, 1 + i, 2 + i, 0]);
        }
    }
}
