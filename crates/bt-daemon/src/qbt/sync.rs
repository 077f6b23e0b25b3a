//! `sync/maindata`: the whole state on the first call, then only what changed since the
//! `rid` the client holds.
//!
//! One [`SyncTable`] serves every client. It keeps the torrent objects it last showed,
//! each field stamped with the generation (`rid`) in which it last changed, and the
//! generations in which torrents were removed. A delta against `rid` is every field
//! stamped later than it: its cost follows what changed, not how many torrents there are.
//! Categories, tags and the server state are small; they are kept whole for the last
//! `KEPT` (64) generations, and a `rid` older than those gets a full update.

use std::collections::{BTreeMap, VecDeque};

use bt_meta::InfoHash;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::daemon::Shown;

/// The small parts of a response: categories, tags, the server state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Small {
    /// Category objects by name.
    pub categories: BTreeMap<String, Value>,
    /// Tag names.
    pub tags: Vec<String>,
    /// The `server_state` object.
    pub server_state: Map<String, Value>,
}

/// How many generations a client's `rid` may lag behind and still get a delta.
const KEPT: usize = 64;

/// A torrent object as last shown.
#[derive(Debug)]
struct Row {
    /// The info-hash in hex, the object's key.
    key: String,
    /// Field values, in the order of [`SyncTable::names`].
    values: Vec<Value>,
    /// The generation in which each field last changed.
    changed: Vec<u64>,
    /// The latest of `changed`.
    latest: u64,
}

/// What every client of `sync/maindata` has been shown.
#[derive(Debug, Default)]
pub struct SyncTable {
    /// The latest generation (the `rid` of the latest response).
    generation: u64,
    /// The daemon's fingerprints of what the rows show.
    shown: Shown,
    rows: BTreeMap<InfoHash, Row>,
    /// The torrent object's field names.
    names: Vec<&'static str>,
    /// Torrents removed, with the generation of their removal, oldest first.
    removed: VecDeque<(u64, InfoHash)>,
    /// The small parts of the last [`KEPT`] generations, oldest first.
    small: VecDeque<(u64, Small)>,
}

impl SyncTable {
    /// The daemon's fingerprints, for [`Daemon::changes`](crate::Daemon::changes).
    pub fn shown_mut(&mut self) -> &mut Shown {
        &mut self.shown
    }

    /// Takes in the torrents whose objects may have changed, those removed, and the
    /// small parts; a new generation begins if anything differs from the last one.
    pub fn advance(
        &mut self,
        changed: Vec<(InfoHash, Vec<(&'static str, Value)>)>,
        removed: Vec<InfoHash>,
        small: Small,
    ) {
        let next = self.generation + 1;
        let mut any = false;
        for (hash, fields) in changed {
            if self.names.is_empty() {
                self.names = fields.iter().map(|(k, _)| *k).collect();
            }
            debug_assert!(fields
                .iter()
                .map(|(k, _)| *k)
                .eq(self.names.iter().copied()));
            let values: Vec<Value> = fields.into_iter().map(|(_, v)| v).collect();
            match self.rows.get_mut(&hash) {
                Some(row) => {
                    for (i, v) in values.into_iter().enumerate() {
                        if row.values.get(i) != Some(&v) {
                            if let Some(slot) = row.values.get_mut(i) {
                                *slot = v;
                                row.changed[i] = next;
                                row.latest = next;
                                any = true;
                            }
                        }
                    }
                }
                None => {
                    let n = values.len();
                    self.rows.insert(
                        hash,
                        Row {
                            key: hash.to_hex(),
                            values,
                            changed: vec![next; n],
                            latest: next,
                        },
                    );
                    any = true;
                }
            }
        }
        for hash in removed {
            if self.rows.remove(&hash).is_some() {
                self.removed.push_back((next, hash));
                any = true;
            }
        }
        if self.small.back().is_none_or(|(_, last)| *last != small) {
            any = true;
        }
        if any {
            self.generation = next;
            self.small.push_back((next, small));
            while self.small.len() > KEPT {
                self.small.pop_front();
            }
            let horizon = self.horizon();
            while self.removed.front().is_some_and(|(g, _)| *g < horizon) {
                self.removed.pop_front();
            }
        }
    }

    /// The oldest `rid` a delta can be made against.
    fn horizon(&self) -> u64 {
        self.small.front().map_or(0, |(g, _)| *g)
    }

    /// The response to a request carrying `rid`, as JSON bytes: a delta if `rid` is one
    /// this table can still answer from, otherwise everything.
    pub fn respond(&self, rid: u64) -> Vec<u8> {
        let since = (rid != 0 && rid >= self.horizon() && rid <= self.generation)
            .then(|| self.small.iter().find(|(g, _)| *g == rid).map(|(_, s)| s))
            .flatten()
            .map(|small| (rid, small));
        let body = Body { table: self, since };
        serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec())
    }
}

/// A response: a full update when `since` is `None`, else what changed after it.
struct Body<'a> {
    table: &'a SyncTable,
    since: Option<(u64, &'a Small)>,
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let t = self.table;
        let now = t.small.back().map(|(_, s)| s);
        let empty = Small::default();
        let now = now.unwrap_or(&empty);
        let mut map = ser.serialize_map(None)?;
        map.serialize_entry("rid", &t.generation)?;
        let Some((rid, old)) = self.since else {
            map.serialize_entry("full_update", &true)?;
            map.serialize_entry("torrents", &Rows { table: t, since: 0 })?;
            map.serialize_entry("categories", &now.categories)?;
            map.serialize_entry("tags", &now.tags)?;
            map.serialize_entry("server_state", &now.server_state)?;
            map.serialize_entry("trackers", &Map::new())?;
            return map.end();
        };
        if t.rows.values().any(|r| r.latest > rid) {
            map.serialize_entry(
                "torrents",
                &Rows {
                    table: t,
                    since: rid,
                },
            )?;
        }
        let removed: Vec<String> = t
            .removed
            .iter()
            .filter(|(g, hash)| *g > rid && !t.rows.contains_key(hash))
            .map(|(_, hash)| hash.to_hex())
            .collect();
        if !removed.is_empty() {
            map.serialize_entry("torrents_removed", &removed)?;
        }
        let cats: BTreeMap<&String, &Value> = now
            .categories
            .iter()
            .filter(|(k, v)| old.categories.get(*k) != Some(*v))
            .collect();
        if !cats.is_empty() {
            map.serialize_entry("categories", &cats)?;
        }
        let cats_removed: Vec<&String> = old
            .categories
            .keys()
            .filter(|k| !now.categories.contains_key(*k))
            .collect();
        if !cats_removed.is_empty() {
            map.serialize_entry("categories_removed", &cats_removed)?;
        }
        let tags: Vec<&String> = now.tags.iter().filter(|x| !old.tags.contains(x)).collect();
        if !tags.is_empty() {
            map.serialize_entry("tags", &tags)?;
        }
        let tags_removed: Vec<&String> =
            old.tags.iter().filter(|x| !now.tags.contains(x)).collect();
        if !tags_removed.is_empty() {
            map.serialize_entry("tags_removed", &tags_removed)?;
        }
        let server: BTreeMap<&String, &Value> = now
            .server_state
            .iter()
            .filter(|(k, v)| old.server_state.get(*k) != Some(*v))
            .collect();
        if !server.is_empty() {
            map.serialize_entry("server_state", &server)?;
        }
        map.end()
    }
}

/// The torrent objects with a field changed after `since` (0: all of them, whole).
struct Rows<'a> {
    table: &'a SyncTable,
    since: u64,
}

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for row in self.table.rows.values().filter(|r| r.latest > self.since) {
            map.serialize_entry(
                &row.key,
                &Fields {
                    names: &self.table.names,
                    row,
                    since: self.since,
                },
            )?;
        }
        map.end()
    }
}

/// One torrent object's fields changed after `since`.
struct Fields<'a> {
    names: &'a [&'static str],
    row: &'a Row,
    since: u64,
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(None)?;
        for ((name, value), changed) in self
            .names
            .iter()
            .zip(&self.row.values)
            .zip(&self.row.changed)
        {
            if *changed > self.since {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn obj(progress: i64) -> Vec<(&'static str, Value)> {
        vec![("name", json!("t")), ("progress", json!(progress))]
    }

    fn small(tags: &[&str]) -> Small {
        Small {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Small::default()
        }
    }

    fn answer(t: &SyncTable, rid: u64) -> Value {
        serde_json::from_slice(&t.respond(rid)).unwrap()
    }

    #[test]
    fn a_delta_carries_only_what_changed() {
        let mut t = SyncTable::default();
        t.advance(
            vec![(hash(1), obj(0)), (hash(2), obj(0))],
            vec![],
            small(&["x"]),
        );
        let first = answer(&t, 0);
        assert_eq!(first["full_update"], json!(true));
        assert_eq!(first["torrents"][hash(1).to_hex()]["name"], json!("t"));
        let rid = first["rid"].as_u64().unwrap();

        t.advance(
            vec![(hash(1), obj(1)), (hash(3), obj(0))],
            vec![hash(2)],
            small(&["y"]),
        );
        let second = answer(&t, rid);
        assert_eq!(second.get("full_update"), None);
        assert_eq!(second["torrents"][hash(1).to_hex()], json!({"progress": 1}));
        assert_eq!(second["torrents"][hash(3).to_hex()]["name"], json!("t"));
        assert_eq!(second["torrents_removed"], json!([hash(2).to_hex()]));
        assert_eq!(second["tags"], json!(["y"]));
        assert_eq!(second["tags_removed"], json!(["x"]));

        // Nothing changed: the same generation, and a delta with only the rid.
        let rid2 = second["rid"].as_u64().unwrap();
        t.advance(vec![(hash(1), obj(1))], vec![], small(&["y"]));
        let same = answer(&t, rid2);
        assert_eq!(same, json!({"rid": rid2}));

        // A client two generations behind gets both changes at once.
        t.advance(vec![(hash(3), obj(5))], vec![], small(&["y"]));
        let behind = answer(&t, rid);
        assert_eq!(behind["torrents"][hash(1).to_hex()], json!({"progress": 1}));
        assert_eq!(behind["torrents"][hash(3).to_hex()]["progress"], json!(5));

        // An unknown rid gets everything again.
        assert_eq!(answer(&t, 999)["full_update"], json!(true));
    }

    #[test]
    fn a_rid_older_than_the_kept_generations_gets_a_full_update() {
        let mut t = SyncTable::default();
        t.advance(vec![(hash(1), obj(0))], vec![], small(&[]));
        let old = answer(&t, 0)["rid"].as_u64().unwrap();
        for p in 1..=(KEPT as i64 + 1) {
            t.advance(vec![(hash(1), obj(p))], vec![], small(&[]));
        }
        assert_eq!(answer(&t, old)["full_update"], json!(true));
        let recent = t.generation - 1;
        assert_eq!(answer(&t, recent).get("full_update"), None);
    }

    #[test]
    fn a_torrent_removed_and_added_again_is_shown_whole_not_removed() {
        let mut t = SyncTable::default();
        t.advance(vec![(hash(1), obj(0))], vec![], small(&[]));
        let rid = answer(&t, 0)["rid"].as_u64().unwrap();
        t.advance(vec![], vec![hash(1)], small(&[]));
        t.advance(vec![(hash(1), obj(0))], vec![], small(&[]));
        let delta = answer(&t, rid);
        assert_eq!(delta.get("torrents_removed"), None, "{delta}");
        assert_eq!(delta["torrents"][hash(1).to_hex()]["name"], json!("t"));
    }
}
