//! [`HandleCache`]: a bounded set of open files, least recently used closed first.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

/// Open file handles by file index, at most `capacity` of them.
///
/// The lock is held only to look up, insert or evict; callers clone the `Arc<File>` and do
/// their I/O after the lock is released. An evicted handle closes when its last user drops it.
#[derive(Debug)]
pub(crate) struct HandleCache {
    capacity: usize,
    inner: Mutex<Lru>,
}

#[derive(Debug, Default)]
struct Lru {
    map: HashMap<usize, Slot>,
    clock: u64,
}

#[derive(Debug)]
struct Slot {
    file: Arc<File>,
    sized: bool,
    last_used: u64,
}

impl HandleCache {
    /// An empty cache holding at most `capacity` handles (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Lru::default()),
        }
    }

    /// The cached handle for `file`, if any, and whether it was made ready for writing
    /// (opened read-write, created and given its full length).
    pub(crate) fn get(&self, file: usize) -> Option<(Arc<File>, bool)> {
        let mut lru = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        let slot = lru.map.get_mut(&file)?;
        slot.last_used = now;
        Some((Arc::clone(&slot.file), slot.sized))
    }

    /// Caches `handle` for `file` (replacing any older one), evicting the least recently
    /// used handle if the cache is full.
    pub(crate) fn insert(&self, file: usize, handle: Arc<File>, sized: bool) {
        let mut lru = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        lru.clock += 1;
        let now = lru.clock;
        if !lru.map.contains_key(&file) && lru.map.len() >= self.capacity {
            let oldest = lru
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(&k, _)| k);
            if let Some(k) = oldest {
                lru.map.remove(&k);
            }
        }
        lru.map.insert(
            file,
            Slot {
                file: handle,
                sized,
                last_used: now,
            },
        );
    }

    /// Number of cached handles.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(dir: &std::path::Path, name: &str) -> Arc<File> {
        Arc::new(File::create(dir.join(name)).unwrap())
    }

    #[test]
    fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let c = HandleCache::new(2);
        c.insert(0, handle(dir.path(), "a"), true);
        c.insert(1, handle(dir.path(), "b"), false);
        assert!(c.get(0).is_some()); // 0 is now more recent than 1
        c.insert(2, handle(dir.path(), "c"), true);
        assert_eq!(c.len(), 2);
        assert!(c.get(1).is_none());
        assert!(c.get(0).is_some());
        assert_eq!(c.get(2).map(|(_, w)| w), Some(true));
    }

    #[test]
    fn replacing_does_not_evict() {
        let dir = tempfile::tempdir().unwrap();
        let c = HandleCache::new(2);
        c.insert(0, handle(dir.path(), "a"), false);
        c.insert(1, handle(dir.path(), "b"), false);
        c.insert(0, handle(dir.path(), "a"), true);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(0).map(|(_, w)| w), Some(true));
        assert!(c.get(1).is_some());
    }
}
