//! [`MemoryBackend`]: a torrent's files held in memory, for engine tests without a disk.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

use super::backend::{FileStamp, MTime, StorageBackend};

/// Files kept in memory. A file does not exist until it is first written (or
/// [`set_file`](Self::set_file) is called), then it has its full declared length, zero-filled,
/// just like a sparse file on disk. Every write moves its modification time forward.
#[derive(Debug)]
pub struct MemoryBackend {
    lens: Vec<u64>,
    files: Vec<RwLock<Option<MemFile>>>,
    clock: AtomicI64,
}

#[derive(Debug)]
struct MemFile {
    data: Vec<u8>,
    mtime: MTime,
}

impl MemoryBackend {
    /// A backend for files of these lengths (one per file of the torrent, pad files included).
    pub fn new(lens: &[u64]) -> Self {
        Self {
            lens: lens.to_vec(),
            files: lens.iter().map(|_| RwLock::new(None)).collect(),
            clock: AtomicI64::new(1),
        }
    }

    /// A copy of `file`'s bytes, `None` if it does not exist.
    pub fn file(&self, file: usize) -> Option<Vec<u8>> {
        let slot = self.files.get(file)?;
        let guard = slot.read().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|f| f.data.clone())
    }

    /// Replaces `file` with `data` (any length, as if changed behind our back), or removes it.
    pub fn set_file(&self, file: usize, data: Option<Vec<u8>>) {
        if let Some(slot) = self.files.get(file) {
            let mtime = self.tick();
            *slot.write().unwrap_or_else(|e| e.into_inner()) =
                data.map(|data| MemFile { data, mtime });
        }
    }

    fn tick(&self) -> MTime {
        MTime {
            secs: self.clock.fetch_add(1, Ordering::Relaxed),
            nanos: 0,
        }
    }

    fn slot(&self, file: usize) -> io::Result<&RwLock<Option<MemFile>>> {
        self.files.get(file).ok_or_else(|| no_such_file(file))
    }
}

fn no_such_file(file: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("no file with index {file}"),
    )
}

fn range(offset: u64, len: usize, file_len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(len)?;
    (end <= file_len).then_some(start..end)
}

impl StorageBackend for MemoryBackend {
    fn read_at(&self, file: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let guard = self.slot(file)?.read().unwrap_or_else(|e| e.into_inner());
        let f = guard
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file does not exist"))?;
        let r = range(offset, buf.len(), f.data.len()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            )
        })?;
        buf.copy_from_slice(&f.data[r]); // ok: `range` checked the bounds
        Ok(())
    }

    fn write_at(&self, file: usize, offset: u64, buf: &[u8]) -> io::Result<()> {
        let declared = *self.lens.get(file).ok_or_else(|| no_such_file(file))?;
        let mtime = self.tick();
        let mut guard = self.slot(file)?.write().unwrap_or_else(|e| e.into_inner());
        let f = guard.get_or_insert_with(|| MemFile {
            data: vec![0; usize::try_from(declared).unwrap_or(0)],
            mtime,
        });
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "write offset too large");
        let start = usize::try_from(offset).map_err(|_| too_big())?;
        let end = start.checked_add(buf.len()).ok_or_else(too_big)?;
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[start..end].copy_from_slice(buf); // ok: resized to at least `end` above
        f.mtime = mtime;
        Ok(())
    }

    fn stamp(&self, file: usize) -> io::Result<Option<FileStamp>> {
        let guard = self.slot(file)?.read().unwrap_or_else(|e| e.into_inner());
        Ok(guard.as_ref().map(|f| FileStamp {
            len: f.data.len() as u64,
            mtime: f.mtime,
        }))
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }

    fn prepare(&self) -> io::Result<()> {
        for (slot, &len) in self.files.iter().zip(&self.lens) {
            if len == 0 {
                let mut guard = slot.write().unwrap_or_else(|e| e.into_inner());
                if guard.is_none() {
                    *guard = Some(MemFile {
                        data: Vec::new(),
                        mtime: self.tick(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_until_written_then_full_length() {
        let m = MemoryBackend::new(&[10, 0]);
        assert_eq!(m.stamp(0).unwrap(), None);
        let mut buf = [0u8; 2];
        let err = m.read_at(0, 0, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        m.write_at(0, 4, b"ab").unwrap();
        assert_eq!(m.file(0).unwrap(), b"\0\0\0\0ab\0\0\0\0");
        assert_eq!(m.stamp(0).unwrap().unwrap().len, 10);
        m.read_at(0, 4, &mut buf).unwrap();
        assert_eq!(&buf, b"ab");
        let err = m.read_at(0, 9, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(m.stamp(1).unwrap().is_none());
        m.prepare().unwrap();
        assert_eq!(m.stamp(1).unwrap().unwrap().len, 0);
    }

    #[test]
    fn writes_move_mtime_forward() {
        let m = MemoryBackend::new(&[4]);
        m.write_at(0, 0, b"x").unwrap();
        let a = m.stamp(0).unwrap().unwrap().mtime;
        m.write_at(0, 1, b"y").unwrap();
        let b = m.stamp(0).unwrap().unwrap().mtime;
        assert!(b > a);
    }

    #[test]
    fn bad_index_is_an_error() {
        let m = MemoryBackend::new(&[4]);
        assert!(m.write_at(1, 0, b"x").is_err());
        assert!(m.stamp(1).is_err());
    }
}
