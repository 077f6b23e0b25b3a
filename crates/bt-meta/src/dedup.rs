//! Duplicate file paths: which files to rename, like libtorrent.
//!
//! Two files collide when their sanitized paths are equal compared case-insensitively,
//! or when a file's path is a directory of another file; pad files are never written
//! and do not count. Going through the files in order, a file whose path is taken (by
//! an earlier file, or as a directory) gets its last element renamed `name.1.ext`,
//! `name.2.ext`, ... (see [`unique_name`]) within a budget of collisions.
//!
//! The keys (sanitized, lowercased elements joined by `\0`, below the torrent's
//! folder) go into one buffer, sorted once: equal keys are neighbours, and a key that
//! is a directory of others is followed by them (`\0` sorts first). The common case,
//! no collision at all, costs the keys and one sort; only a torrent with collisions
//! runs the renaming, which looks candidates up by binary search in the same order.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use crate::error::{Error, Result};
use crate::path::unique_name;

/// The keys of the files that count: sanitized, lowercased path elements joined by
/// `\0` (which no sanitized element holds), below the torrent's folder.
#[derive(Default)]
pub(crate) struct Keys {
    bytes: Vec<u8>,
    /// Per entry: where its key ends in `bytes`.
    ends: Vec<u32>,
    /// Per entry: the file.
    files: Vec<u32>,
}

impl Keys {
    /// Starts the key of `file`; its elements follow with [`Keys::push_element`].
    pub fn start(&mut self, file: usize) {
        self.files.push(file as u32);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Adds one sanitized element to the key being built.
    pub fn push_element(&mut self, element: &str) {
        let n = self.ends.len();
        let start = match n.checked_sub(2) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0) as usize,
            None => 0,
        };
        if self.bytes.len() > start {
            self.bytes.push(0);
        }
        push_lower(&mut self.bytes, element);
        if let Some(end) = self.ends.last_mut() {
            *end = self.bytes.len() as u32;
        }
    }

    /// Whether the keys so far fit the 32-bit offsets.
    pub fn fits(&self) -> bool {
        self.bytes.len() < u32::MAX as usize
    }

    fn len(&self) -> usize {
        self.files.len()
    }

    fn key(&self, entry: usize) -> &[u8] {
        let start = match entry.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        } as usize;
        let end = self.ends.get(entry).copied().unwrap_or(0) as usize;
        self.bytes.get(start..end).unwrap_or_default()
    }

    fn file(&self, entry: usize) -> usize {
        self.files.get(entry).copied().unwrap_or(0) as usize
    }

    /// The entries in key order (equal keys in entry order).
    fn sorted(&self) -> Vec<u32> {
        // Sort by the first 8 bytes, then each run of equal prefixes by whole keys:
        // most comparisons stay inside the array.
        let prefix = |k: &[u8]| {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(k) {
                *d = *s;
            }
            u64::from_be_bytes(b)
        };
        let mut items: Vec<(u64, u32)> = (0..self.len())
            .map(|e| (prefix(self.key(e)), e as u32))
            .collect();
        items.sort_unstable();
        let mut start = 0;
        while start < items.len() {
            let p = items.get(start).map_or(0, |i| i.0);
            let run = items
                .get(start..)
                .unwrap_or_default()
                .iter()
                .take_while(|i| i.0 == p)
                .count();
            if run > 1 {
                if let Some(slice) = items.get_mut(start..start + run) {
                    slice.sort_unstable_by(|a, b| {
                        self.key(a.1 as usize)
                            .cmp(self.key(b.1 as usize))
                            .then(a.1.cmp(&b.1))
                    });
                }
            }
            start += run.max(1);
        }
        items.into_iter().map(|i| i.1).collect()
    }
}

/// Appends `s` lowercased (as `str::to_lowercase`, without a copy for ASCII).
fn push_lower(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        out.extend_from_slice(s.to_lowercase().as_bytes());
    }
}

/// Whether `key` is a proper directory prefix of `other`.
fn is_dir_of(key: &[u8], other: &[u8]) -> bool {
    other.len() > key.len() && other.starts_with(key) && other.get(key.len()) == Some(&0)
}

/// The files to rename and their new last elements, in file order. `last(file)` is
/// the file's sanitized last element, `display(file)` its path for an error.
pub(crate) fn renames(
    keys: &Keys,
    budget: u32,
    last: impl Fn(usize) -> String,
    display: impl Fn(usize) -> String,
) -> Result<Vec<(usize, String)>> {
    let order = keys.sorted();
    let key_at = |pos: usize| keys.key(order.get(pos).copied().unwrap_or(0) as usize);
    // Per position: the first position of its run of equal keys (its class), and
    // whether the class is a directory of some key.
    let n = order.len();
    let mut any = false;
    for pos in 1..n {
        let (a, b) = (key_at(pos - 1), key_at(pos));
        if a == b || is_dir_of(a, b) {
            any = true;
            break;
        }
    }
    if !any {
        return Ok(Vec::new());
    }
    // Per position: the first position of its run of equal keys (its class); per
    // class: whether its key is a directory of another key (then the first key after
    // the run is one of those, `\0` sorting first).
    let mut class = vec![0u32; n];
    let mut is_dir = vec![false; n];
    let mut first = 0;
    while first < n {
        let end = (first + 1..n)
            .find(|&p| key_at(p) != key_at(first))
            .unwrap_or(n);
        for c in class.get_mut(first..end).unwrap_or_default() {
            *c = first as u32;
        }
        if end < n && is_dir_of(key_at(first), key_at(end)) {
            if let Some(d) = is_dir.get_mut(first) {
                *d = true;
            }
        }
        first = end;
    }
    // Entry -> position in the order.
    let mut position = vec![0u32; n];
    for (pos, &entry) in order.iter().enumerate() {
        if let Some(p) = position.get_mut(entry as usize) {
            *p = pos as u32;
        }
    }
    // Where `key` is in the order: the first position whose key is not less.
    let lower_bound = |key: &[u8]| order.partition_point(|&e| keys.key(e as usize) < key);

    let mut claimed = vec![false; n];
    // The new keys that are no file's key, by a keyed 64-bit hash (an attacker cannot
    // choose collisions; a collision would only make a name count as taken).
    let hasher = RandomState::new();
    let mut renamed: HashSet<u64> = HashSet::new();
    let mut budget = budget;
    let mut out = Vec::new();
    for entry in 0..n {
        let pos = position.get(entry).copied().unwrap_or(0) as usize;
        let c = class.get(pos).copied().unwrap_or(0) as usize;
        let taken = claimed.get(c).copied().unwrap_or(false);
        if !taken && !is_dir.get(c).copied().unwrap_or(false) {
            if let Some(cl) = claimed.get_mut(c) {
                *cl = true;
            }
            continue;
        }
        let key = keys.key(entry);
        let parent_len = key.iter().rposition(|&b| b == 0).map_or(0, |z| z + 1);
        let parent = key.get(..parent_len).unwrap_or_default();
        let candidate_key = |name: &str| {
            let mut k = parent.to_vec();
            push_lower(&mut k, name);
            k
        };
        let mut is_taken = |name: &str| {
            let k = candidate_key(name);
            let at = lower_bound(&k);
            if at < n && key_at(at) == k.as_slice() {
                let c = class.get(at).copied().unwrap_or(0) as usize;
                if claimed.get(c).copied().unwrap_or(false)
                    || is_dir.get(c).copied().unwrap_or(false)
                {
                    return true;
                }
            }
            if renamed.contains(&hasher.hash_one(&k)) {
                return true;
            }
            let mut dir = k;
            dir.push(0);
            let at = lower_bound(&dir);
            at < n && key_at(at).starts_with(&dir)
        };
        let file = keys.file(entry);
        let new_name = unique_name(&last(file), &mut is_taken, &mut budget).ok_or_else(|| {
            Error::TooManyDuplicateFilenames {
                path: display(file),
            }
        })?;
        let k = candidate_key(&new_name);
        let at = lower_bound(&k);
        if at < n && key_at(at) == k.as_slice() {
            let c = class.get(at).copied().unwrap_or(0) as usize;
            if let Some(cl) = claimed.get_mut(c) {
                *cl = true;
            }
        } else {
            renamed.insert(hasher.hash_one(&k));
        }
        out.push((file, new_name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule as it was first written (sets of whole lowercase paths), to check the
    /// sorted version against.
    fn reference(paths: &[Vec<String>], budget: u32) -> Option<Vec<(usize, String)>> {
        let key = |p: &[String]| p.join("/").to_lowercase();
        let mut dirs = HashSet::new();
        for p in paths {
            for n in 1..p.len() {
                dirs.insert(key(&p[..n]));
            }
        }
        let mut taken = HashSet::new();
        let mut budget = budget;
        let mut out = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let k = key(p);
            if !taken.contains(&k) && !dirs.contains(&k) {
                taken.insert(k);
                continue;
            }
            let parent = key(&p[..p.len() - 1]);
            let mut is_taken = |c: &str| {
                let k = if parent.is_empty() {
                    c.to_lowercase()
                } else {
                    format!("{parent}/{}", c.to_lowercase())
                };
                taken.contains(&k) || dirs.contains(&k)
            };
            let new = unique_name(p.last().unwrap(), &mut is_taken, &mut budget)?;
            let mut q = p.clone();
            *q.last_mut().unwrap() = new.clone();
            taken.insert(key(&q));
            out.push((i, new));
        }
        Some(out)
    }

    fn ours(paths: &[Vec<String>], budget: u32) -> Option<Vec<(usize, String)>> {
        let mut keys = Keys::default();
        for (i, p) in paths.iter().enumerate() {
            keys.start(i);
            for e in p {
                keys.push_element(e);
            }
        }
        renames(
            &keys,
            budget,
            |f| paths[f].last().unwrap().clone(),
            |f| paths[f].join("/"),
        )
        .ok()
    }

    #[test]
    fn renames_like_libtorrent() {
        let p = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        let paths = vec![
            p("dup/x.txt"),
            p("DUP/X.TXT"),
            p("dup"),
            p("a"),
            p("A"),
            p("a.1"),
        ];
        assert_eq!(
            ours(&paths, 1000).unwrap(),
            vec![
                (1, "X.1.TXT".into()),
                (2, "dup.1".into()),
                (4, "A.1".into()),
                (5, "a.1.1".into())
            ]
        );
        assert_eq!(ours(&paths, 1000), reference(&paths, 1000));
        assert_eq!(ours(&[p("a"), p("b")], 0).unwrap(), vec![]);
    }

    proptest! {
        #[test]
        fn same_as_the_set_based_rule(
            paths in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec!["a", "A", "b", "a.1", "A.1", "b.1.x", "Σ", "ς", "σ"]), 1..4),
                1..12,
            ),
            budget in 0u32..4,
        ) {
            let paths: Vec<Vec<String>> = paths
                .into_iter()
                .map(|p| p.into_iter().map(str::to_string).collect())
                .collect();
            prop_assert_eq!(ours(&paths, budget), reference(&paths, budget));
        }
    }
}
