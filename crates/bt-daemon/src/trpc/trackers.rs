//! `torrent-set`'s tracker edits (`trackerList`, `trackerAdd`, `trackerRemove`,
//! `trackerReplace`) applied to a torrent's tiers. A tracker's id is its place in the
//! tiers read in order, as `torrent-get` numbers `trackers` and `trackerStats`.

use serde_json::{Map, Value};

use super::request::{opt, opt_str, opt_strings, RequestError};

/// The tracker edits of one `torrent-set`.
#[derive(Debug, Default, PartialEq)]
pub struct TrackerEdits {
    /// A whole new list: tiers separated by blank lines, one URL a line.
    pub list: Option<String>,
    /// URLs to add, each in a tier of its own.
    pub add: Vec<String>,
    /// Ids to remove.
    pub remove: Vec<usize>,
    /// (id, new URL) pairs.
    pub replace: Vec<(usize, String)>,
}

impl TrackerEdits {
    /// Reads the edits from `torrent-set` arguments.
    pub fn read(a: &Map<String, Value>) -> Result<TrackerEdits, RequestError> {
        let remove = opt(
            a,
            "trackerRemove",
            |v| {
                v.as_array()?
                    .iter()
                    .map(|i| i.as_u64().map(|i| i as usize))
                    .collect()
            },
            "a list of tracker ids",
        )?
        .unwrap_or_default();
        let replace = opt(
            a,
            "trackerReplace",
            |v| {
                let items = v.as_array()?;
                if items.len() % 2 != 0 {
                    return None;
                }
                items
                    .chunks(2)
                    .map(|pair| Some((pair[0].as_u64()? as usize, pair[1].as_str()?.to_string())))
                    .collect()
            },
            "a list of tracker id and URL pairs",
        )?
        .unwrap_or_default();
        Ok(TrackerEdits {
            list: opt_str(a, "trackerList")?.map(String::from),
            add: opt_strings(a, "trackerAdd")?.unwrap_or_default(),
            remove,
            replace,
        })
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        *self == TrackerEdits::default()
    }

    /// Applies the edits to `tiers`: the new list first, then replacements and removals
    /// (by the ids before this edit), then additions.
    pub fn apply(&self, tiers: &mut Vec<Vec<String>>) -> Result<(), String> {
        // Blank lines only separate the tiers of a list; an added or replacing URL is one.
        let list_lines = self.list.iter().flat_map(|l| l.lines()).map(str::trim);
        for url in self
            .add
            .iter()
            .map(|u| u.trim())
            .chain(self.replace.iter().map(|(_, u)| u.trim()))
            .chain(list_lines.filter(|l| !l.is_empty()))
        {
            if !is_tracker_url(url) {
                return Err(format!("{url:?} is not an http(s) or udp tracker URL"));
            }
        }
        if let Some(list) = &self.list {
            *tiers = list
                .split("\n\n")
                .map(|tier| {
                    tier.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .filter(|t| !t.is_empty())
                .collect();
        }
        let count: usize = tiers.iter().map(Vec::len).sum();
        if let Some(bad) = self
            .remove
            .iter()
            .chain(self.replace.iter().map(|(id, _)| id))
            .find(|id| **id >= count)
        {
            return Err(format!("no tracker {bad}: the torrent has {count}"));
        }
        let mut id = 0;
        for tier in tiers.iter_mut() {
            let mut kept = Vec::with_capacity(tier.len());
            for url in tier.drain(..) {
                if let Some((_, new)) = self.replace.iter().find(|(r, _)| *r == id) {
                    kept.push(new.trim().to_string());
                } else if !self.remove.contains(&id) {
                    kept.push(url);
                }
                id += 1;
            }
            *tier = kept;
        }
        tiers.retain(|t| !t.is_empty());
        let added: Vec<String> = self.add.iter().map(|u| u.trim().to_string()).collect();
        crate::qbt::trackers::add_urls(tiers, &added);
        Ok(())
    }
}

/// A URL a torrent can announce to: the qBittorrent façade's rule, so both façades
/// accept the same trackers.
fn is_tracker_url(url: &str) -> bool {
    crate::qbt::trackers::valid_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tiers(t: &[&[&str]]) -> Vec<Vec<String>> {
        t.iter()
            .map(|tier| tier.iter().map(|u| u.to_string()).collect())
            .collect()
    }

    fn check(start: &[&[&str]], args: Value, want: Result<&[&[&str]], &str>) {
        let edits = TrackerEdits::read(args.as_object().unwrap()).unwrap();
        let mut got = tiers(start);
        match (edits.apply(&mut got), want) {
            (Ok(()), Ok(w)) => assert_eq!(got, tiers(w), "{args}"),
            (Err(e), Err(w)) => assert!(e.contains(w), "{args}: {e}"),
            (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn edits_by_id_list_and_url() {
        let a = "http://a/announce";
        let b = "udp://b:1";
        let c = "https://c/announce";
        check(
            &[&[a, b], &[c]],
            json!({"trackerRemove": [1]}),
            Ok(&[&[a], &[c]]),
        );
        check(&[&[a], &[b]], json!({"trackerRemove": [0, 1]}), Ok(&[]));
        check(
            &[&[a], &[b]],
            json!({"trackerReplace": [1, c]}),
            Ok(&[&[a], &[c]]),
        );
        check(&[&[a]], json!({"trackerAdd": [b, a]}), Ok(&[&[a], &[b]]));
        check(
            &[&[a]],
            json!({"trackerList": format!("{b}\n{c}\n\n{a}\n")}),
            Ok(&[&[b, c], &[a]]),
        );
        check(&[&[a]], json!({"trackerRemove": [3]}), Err("no tracker 3"));
        check(&[&[a]], json!({"trackerAdd": [" "]}), Err("not an http"));
        check(
            &[&[a]],
            json!({"trackerReplace": [0, ""]}),
            Err("not an http"),
        );
        check(
            &[&[a]],
            json!({"trackerAdd": ["file:///etc/passwd"]}),
            Err("not an http"),
        );
        check(
            &[&[a]],
            json!({"trackerAdd": ["ht\u{20ac}tp://x"]}),
            Err("not an http"),
        );
        let bad = json!({"trackerReplace": [0]});
        assert!(TrackerEdits::read(bad.as_object().unwrap()).is_err());
        assert!(TrackerEdits::read(&Map::new()).unwrap().is_empty());
    }
}
