//! The [`StorageBackend`] trait: positional reads and writes on a torrent's files by index.

use std::io::{self, IoSlice};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where a torrent's bytes live: files addressed by their index in the torrent's file list.
///
/// Every method is blocking and is meant to run on a worker thread, never on the async
/// runtime. Implementations are shared between threads (`&self`, `Send + Sync`) and must
/// not hold a lock across reads or writes (a `sync` may wait for another one). Pad files (BEP 47) are never passed to a backend:
/// [`TorrentStorage`](super::TorrentStorage) reads them as zeros and drops writes to them.
pub trait StorageBackend: Send + Sync {
    /// Fills `buf` from `file` at `offset`; a short file gives `ErrorKind::UnexpectedEof`
    /// and a missing one `ErrorKind::NotFound`.
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `buf` to `file` at `offset`, creating the file (and its directories)
    /// first if needed.
    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// Writes the buffers back to back to `file` from `offset` (one `pwritev` where the
    /// backend can; by default one [`write_at`](Self::write_at) per buffer).
    fn write_vectored_at(&self, file: usize, offset: u64, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        let mut at = offset;
        for buf in bufs {
            self.write_at(file, at, buf)?;
            at += buf.len() as u64;
        }
        Ok(())
    }

    /// Length and modification time of `file` as stored now, `None` if it does not exist.
    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>>;

    /// Makes everything written so far durable.
    fn sync(&self) -> io::Result<()>;

    /// Tells the backend that `len` bytes at `offset` of `file`, written and synced, will
    /// not be read again soon: a file backend lets the OS drop them from its page cache.
    /// Advice only: the data stays, and a backend may ignore it (the default does).
    fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
        let _ = (file, offset, len);
        Ok(())
    }

    /// Gets ready for writing: creates what must exist before the first write (the
    /// download folder, empty files) and checks that writing there works.
    fn prepare(&self) -> io::Result<()> {
        Ok(())
    }
}

impl<B: StorageBackend + ?Sized> StorageBackend for Box<B> {
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(file, offset, buf)
    }
    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_at(file, offset, buf)
    }
    fn write_vectored_at(&self, file: usize, offset: u64, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        (**self).write_vectored_at(file, offset, bufs)
    }
    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>> {
        (**self).stamp(file)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
        (**self).uncache(file, offset, len)
    }
    fn prepare(&self) -> io::Result<()> {
        (**self).prepare()
    }
}

impl<B: StorageBackend + ?Sized> StorageBackend for std::sync::Arc<B> {
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(file, offset, buf)
    }
    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        (**self).write_at(file, offset, buf)
    }
    fn write_vectored_at(&self, file: usize, offset: u64, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        (**self).write_vectored_at(file, offset, bufs)
    }
    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>> {
        (**self).stamp(file)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
        (**self).uncache(file, offset, len)
    }
    fn prepare(&self) -> io::Result<()> {
        (**self).prepare()
    }
}

/// What a file looks like on disk: its length and last modification time.
///
/// Resume data stores one per file; if they still match at the next start, the pieces
/// recorded as verified are trusted without hashing them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Length in bytes.
    pub len: u64,
    /// Modification time.
    pub mtime: MTime,
}

/// A modification time as seconds and nanoseconds relative to the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MTime {
    /// Whole seconds since 1970-01-01 UTC (negative before it).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl MTime {
    /// Converts a `SystemTime`, including times before the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                // `t` is before the epoch: floor to whole seconds so `nanos` stays positive.
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    Self {
                        secs: -secs,
                        nanos: 0,
                    }
                } else {
                    Self {
                        secs: -secs - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(t: SystemTime, secs: i64, nanos: u32) {
        assert_eq!(MTime::from_system_time(t), MTime { secs, nanos });
    }

    #[test]
    fn mtime_from_system_time() {
        check(UNIX_EPOCH, 0, 0);
        check(UNIX_EPOCH + Duration::new(5, 7), 5, 7);
        check(UNIX_EPOCH - Duration::new(5, 0), -5, 0);
        check(UNIX_EPOCH - Duration::new(0, 1), -1, 999_999_999);
        check(UNIX_EPOCH - Duration::new(2, 250), -3, 999_999_750);
    }
}
