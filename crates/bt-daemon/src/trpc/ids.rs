//! Transmission's numeric torrent ids: each torrent gets the next number the first time
//! the façade sees it and keeps it for the daemon's lifetime; a removed torrent's id is
//! never given again, and is reported as removed for a minute.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bt_meta::InfoHash;

/// How long a removed id is listed by `recently-active`.
pub const REMOVED_WINDOW: Duration = Duration::from_secs(60);

/// The ids given so far.
#[derive(Debug)]
pub struct IdMap {
    by_hash: HashMap<InfoHash, u64>,
    by_id: BTreeMap<u64, InfoHash>,
    next: u64,
    removed: Vec<(u64, Instant)>,
}

impl Default for IdMap {
    fn default() -> Self {
        IdMap {
            by_hash: HashMap::new(),
            by_id: BTreeMap::new(),
            next: 1,
            removed: Vec::new(),
        }
    }
}

impl IdMap {
    /// Brings the map up to date with the daemon's torrents, `present`, in the order new
    /// ones should be numbered: new torrents get ids, vanished ones are noted as removed.
    pub fn sync(&mut self, present: &[InfoHash], now: Instant) {
        for h in present {
            if !self.by_hash.contains_key(h) {
                self.by_hash.insert(*h, self.next);
                self.by_id.insert(self.next, *h);
                self.next += 1;
            }
        }
        if self.by_hash.len() > present.len() {
            let keep: std::collections::HashSet<&InfoHash> = present.iter().collect();
            let gone: Vec<InfoHash> = self
                .by_hash
                .keys()
                .filter(|h| !keep.contains(h))
                .copied()
                .collect();
            for h in gone {
                if let Some(id) = self.by_hash.remove(&h) {
                    self.by_id.remove(&id);
                    self.removed.push((id, now));
                }
            }
        }
        self.removed
            .retain(|(_, at)| now.saturating_duration_since(*at) < REMOVED_WINDOW);
    }

    /// The id of a torrent.
    pub fn id(&self, hash: &InfoHash) -> Option<u64> {
        self.by_hash.get(hash).copied()
    }

    /// The torrent with this id.
    pub fn hash(&self, id: u64) -> Option<InfoHash> {
        self.by_id.get(&id).copied()
    }

    /// Ids removed within [`REMOVED_WINDOW`] before the last [`IdMap::sync`].
    pub fn recently_removed(&self) -> Vec<u64> {
        self.removed.iter().map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    #[test]
    fn ids_are_stable_when_others_come_and_go() {
        let t0 = Instant::now();
        let mut m = IdMap::default();
        m.sync(&[h(3), h(1)], t0);
        assert_eq!((m.id(&h(3)), m.id(&h(1))), (Some(1), Some(2)));
        m.sync(&[h(1)], t0);
        assert_eq!(m.id(&h(3)), None);
        assert_eq!(m.hash(1), None);
        assert_eq!(m.id(&h(1)), Some(2));
        assert_eq!(m.recently_removed(), vec![1]);
        m.sync(&[h(1), h(2), h(3)], t0);
        assert_eq!(m.id(&h(1)), Some(2));
        assert_eq!(m.id(&h(2)), Some(3));
        assert_eq!(m.id(&h(3)), Some(4), "a torrent added again gets a new id");
        assert_eq!(m.hash(3), Some(h(2)));
        m.sync(&[h(1), h(2), h(3)], t0 + REMOVED_WINDOW);
        assert!(m.recently_removed().is_empty());
    }
}
