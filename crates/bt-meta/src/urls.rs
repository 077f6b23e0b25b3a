//! [`UrlTiers`]: tracker and web-seed URLs in tiers, kept in one string.
//!
//! A torrent may list a million trackers; as `Vec<Vec<String>>` each would cost about
//! 50 bytes besides its text. Here a URL costs its text and 4 bytes, a tier 4 more,
//! and repeats within a tier are found by sorting (not by comparing every pair).

use std::fmt;

/// URLs in tiers (BEP 12 `announce-list`; `url-list` is one tier).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct UrlTiers {
    text: String,
    /// Per URL: where it ends in `text`.
    url_ends: Vec<u32>,
    /// Per tier: where its URLs end in `url_ends`.
    tier_ends: Vec<u32>,
}

impl UrlTiers {
    /// Adds a tier of `urls` (lossy UTF-8, trimmed); empty URLs and repeats within the
    /// tier are dropped (the first one stays), and so is a tier left empty. Returns
    /// `false` (adding nothing) if the text would outgrow 32-bit offsets.
    pub fn push_tier<'u>(&mut self, urls: impl Iterator<Item = &'u [u8]>) -> bool {
        let (text_len, first) = (self.text.len(), self.url_ends.len());
        for url in urls {
            let url = String::from_utf8_lossy(url);
            let url = url.trim();
            if url.is_empty() {
                continue;
            }
            if self.text.len() + url.len() >= u32::MAX as usize {
                self.text.truncate(text_len);
                self.url_ends.truncate(first);
                return false;
            }
            self.text.push_str(url);
            self.url_ends.push(self.text.len() as u32);
        }
        self.dedup_from(first, text_len);
        if self.url_ends.len() > first {
            self.tier_ends.push(self.url_ends.len() as u32);
        }
        true
    }

    /// URL `i`.
    fn url(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(p) => self.url_ends.get(p).copied().unwrap_or(0),
            None => 0,
        } as usize;
        let end = self.url_ends.get(i).copied().unwrap_or(0) as usize;
        self.text.get(start..end).unwrap_or_default()
    }

    /// Room for `tiers` tiers of `urls` URLs holding `text` bytes (exact when the
    /// URLs are valid UTF-8), so that nothing grows by doubling.
    pub fn reserve_exact(&mut self, tiers: usize, urls: usize, text: usize) {
        self.text.reserve_exact(text);
        self.url_ends.reserve_exact(urls);
        self.tier_ends.reserve_exact(tiers);
    }

    /// Drops repeats among the URLs from `first` on (the tier being added), moving the
    /// kept ones down in place.
    fn dedup_from(&mut self, first: usize, text_len: usize) {
        let n = self.url_ends.len() - first;
        if n < 2 {
            return;
        }
        let mut order: Vec<u32> = (first as u32..self.url_ends.len() as u32).collect();
        order.sort_by(|&a, &b| self.url(a as usize).cmp(self.url(b as usize)));
        let mut keep = vec![true; n];
        for w in order.windows(2) {
            if let [a, b] = *w {
                if self.url(a as usize) == self.url(b as usize) {
                    // Stable sort: `a` came first in the tier.
                    if let Some(k) = keep.get_mut(b as usize - first) {
                        *k = false;
                    }
                }
            }
        }
        drop(order);
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        let (mut write, mut start) = (text_len, text_len);
        let mut kept = first;
        for i in first..self.url_ends.len() {
            let end = self.url_ends.get(i).copied().unwrap_or(0) as usize;
            if keep.get(i - first).copied().unwrap_or(false) {
                bytes.copy_within(start..end, write);
                write += end - start;
                if let Some(e) = self.url_ends.get_mut(kept) {
                    *e = write as u32;
                }
                kept += 1;
            }
            start = end;
        }
        bytes.truncate(write);
        self.url_ends.truncate(kept);
        // Whole URLs moved: still UTF-8 (ok: the lossy branch is never taken).
        self.text = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
    }

    /// Whether there is no URL.
    pub fn is_empty(&self) -> bool {
        self.url_ends.is_empty()
    }

    /// The tiers, each an iterator of URLs.
    pub fn tiers(&self) -> impl Iterator<Item = impl Iterator<Item = &str>> {
        let mut start = 0usize;
        self.tier_ends.iter().map(move |&end| {
            let range = start..end as usize;
            start = end as usize;
            range.map(|i| self.url(i))
        })
    }

    /// Every URL, tier after tier.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        (0..self.url_ends.len()).map(|i| self.url(i))
    }

    /// As owned strings, tier by tier.
    pub fn to_vecs(&self) -> Vec<Vec<String>> {
        self.tiers()
            .map(|t| t.map(str::to_string).collect())
            .collect()
    }

    /// Heap bytes held.
    pub fn heap_len(&self) -> usize {
        self.text.capacity() + 4 * (self.url_ends.capacity() + self.tier_ends.capacity())
    }

    /// Gives back room when much of it went unused (repeats, blanks, spaces).
    pub fn shrink_to_fit(&mut self) {
        if self.text.capacity() > self.text.len() + self.text.len() / 4 {
            self.text.shrink_to_fit();
        }
        if self.url_ends.capacity() > self.url_ends.len() + self.url_ends.len() / 4 {
            self.url_ends.shrink_to_fit();
        }
        self.tier_ends.shrink_to_fit();
    }
}

impl fmt::Debug for UrlTiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tiers().map(|t| t.collect::<Vec<_>>()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_trimmed_deduplicated_in_order() {
        let mut t = UrlTiers::default();
        assert!(t.push_tier([&b" b "[..], b"a", b"b", b"", b"c", b"a"].into_iter()));
        assert!(t.push_tier([&b"  "[..]].into_iter()));
        assert!(t.push_tier([&b"a"[..], b"\xff"].into_iter()));
        assert_eq!(
            t.to_vecs(),
            vec![vec!["b", "a", "c"], vec!["a", "\u{fffd}"]]
        );
        assert_eq!(t.urls().count(), 5);
    }

    #[test]
    fn a_million_urls_in_one_tier_take_a_sort_not_a_square() {
        let urls: Vec<Vec<u8>> = (0..1_000_000u32)
            .map(|i| format!("u{}", i % 500_000).into_bytes())
            .collect();
        let mut t = UrlTiers::default();
        t.push_tier(urls.iter().map(Vec::as_slice));
        assert_eq!(t.urls().count(), 500_000);
    }
}
