//! [`FaultyBackend`]: wraps another backend and makes its reads or writes fail on demand.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::backend::{FileStamp, StorageBackend};

/// A backend wrapper for tests of error handling: a disk that fills up after a byte budget
/// (`ErrorKind::StorageFull`, what ENOSPC maps to) and reads that fail with an I/O error.
#[derive(Debug)]
pub struct FaultyBackend<B> {
    inner: B,
    write_budget: AtomicU64,
    fail_reads: AtomicBool,
}

impl<B: StorageBackend> FaultyBackend<B> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            write_budget: AtomicU64::new(u64::MAX),
            fail_reads: AtomicBool::new(false),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Lets `bytes` more bytes be written, then fails every write with `StorageFull`
    /// (a write that crosses the limit stores the part that fits, like a real disk).
    pub fn fail_writes_after(&self, bytes: u64) {
        self.write_budget.store(bytes, Ordering::SeqCst);
    }

    /// Makes the disk "full" now (same as `fail_writes_after(0)`), or frees it again.
    pub fn set_disk_full(&self, full: bool) {
        self.write_budget
            .store(if full { 0 } else { u64::MAX }, Ordering::SeqCst);
    }

    /// Makes every read fail with an `Other` I/O error, or work again.
    pub fn set_fail_reads(&self, fail: bool) {
        self.fail_reads.store(fail, Ordering::SeqCst);
    }
}

/// The error a full disk gives.
fn disk_full() -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        "no space left on device (injected)",
    )
}

impl<B: StorageBackend> StorageBackend for FaultyBackend<B> {
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(io::Error::other("read failed (injected)"));
        }
        self.inner.read_at(file, offset, buf)
    }

    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        let want = buf.len() as u64;
        let mut granted = 0;
        let _ = self
            .write_budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                granted = left.min(want);
                Some(left - granted)
            });
        // ok: `granted <= want == buf.len()`
        let fits = &buf[..granted as usize];
        if !fits.is_empty() {
            self.inner.write_at(file, offset, fits)?;
        }
        if granted < want {
            return Err(disk_full());
        }
        Ok(())
    }

    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>> {
        self.inner.stamp(file)
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }

    fn uncache(&self, file: usize, offset: u64, len: u64) -> io::Result<()> {
        self.inner.uncache(file, offset, len)
    }

    fn prepare(&self) -> io::Result<()> {
        self.inner.prepare()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryBackend;

    #[test]
    fn disk_fills_up_after_budget() {
        let f = FaultyBackend::new(MemoryBackend::new(&[8]));
        f.fail_writes_after(5);
        f.write_at(0, 0, b"abc").unwrap();
        let err = f.write_at(0, 3, b"defg").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(f.inner().file(0).unwrap(), b"abcde\0\0\0");
        assert_eq!(
            f.write_at(0, 0, b"z").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        f.set_disk_full(false);
        f.write_at(0, 7, b"h").unwrap();
        assert_eq!(f.inner().file(0).unwrap(), b"abcde\0\0h");
    }

    #[test]
    fn reads_fail_on_demand() {
        let f = FaultyBackend::new(MemoryBackend::new(&[2]));
        f.write_at(0, 0, b"ab").unwrap();
        f.set_fail_reads(true);
        let mut buf = [0u8; 2];
        assert!(f.read_at(0, 0, &mut buf).is_err());
        f.set_fail_reads(false);
        f.read_at(0, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"ab");
    }
}
