//! `sync/maindata`: the whole state on the first call, then only what changed since the
//! `rid` the client holds.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

/// What one `sync/maindata` response showed: torrents, categories, tags, server state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MainData {
    /// Torrent objects by hash.
    pub torrents: BTreeMap<String, Map<String, Value>>,
    /// Category objects by name.
    pub categories: BTreeMap<String, Value>,
    /// Tag names.
    pub tags: Vec<String>,
    /// The `server_state` object.
    pub server_state: Map<String, Value>,
}

/// The snapshots of the last responses, by `rid`.
#[derive(Debug, Default)]
pub struct SyncHistory {
    next_rid: u64,
    kept: VecDeque<(u64, MainData)>,
}

/// How many earlier responses a client can ask a delta against.
const KEPT: usize = 16;

impl SyncHistory {
    /// The response to a request carrying `rid`, for the state `now`.
    pub fn respond(&mut self, rid: u64, now: MainData) -> Value {
        self.next_rid += 1;
        let new_rid = self.next_rid;
        let base = self
            .kept
            .iter()
            .find(|(r, _)| *r == rid && rid != 0)
            .map(|(_, d)| d);
        let body = match base {
            Some(old) => delta(old, &now, new_rid),
            None => full(&now, new_rid),
        };
        self.kept.push_back((new_rid, now));
        while self.kept.len() > KEPT {
            self.kept.pop_front();
        }
        body
    }
}

fn full(now: &MainData, rid: u64) -> Value {
    json!({
        "rid": rid,
        "full_update": true,
        "torrents": now.torrents,
        "categories": now.categories,
        "tags": now.tags,
        "server_state": now.server_state,
        "trackers": {},
    })
}

/// The fields of `new` that differ from `old`.
fn changed_fields(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn delta(old: &MainData, now: &MainData, rid: u64) -> Value {
    let mut out = Map::new();
    out.insert("rid".into(), json!(rid));
    let mut torrents = Map::new();
    for (hash, obj) in &now.torrents {
        let diff = match old.torrents.get(hash) {
            Some(before) => changed_fields(before, obj),
            None => obj.clone(),
        };
        if !diff.is_empty() {
            torrents.insert(hash.clone(), Value::Object(diff));
        }
    }
    if !torrents.is_empty() {
        out.insert("torrents".into(), Value::Object(torrents));
    }
    let removed: Vec<&String> = old
        .torrents
        .keys()
        .filter(|h| !now.torrents.contains_key(*h))
        .collect();
    if !removed.is_empty() {
        out.insert("torrents_removed".into(), json!(removed));
    }
    let cats: Map<String, Value> = now
        .categories
        .iter()
        .filter(|(k, v)| old.categories.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !cats.is_empty() {
        out.insert("categories".into(), Value::Object(cats));
    }
    let cats_removed: Vec<&String> = old
        .categories
        .keys()
        .filter(|k| !now.categories.contains_key(*k))
        .collect();
    if !cats_removed.is_empty() {
        out.insert("categories_removed".into(), json!(cats_removed));
    }
    let tags: Vec<&String> = now.tags.iter().filter(|t| !old.tags.contains(t)).collect();
    if !tags.is_empty() {
        out.insert("tags".into(), json!(tags));
    }
    let tags_removed: Vec<&String> = old.tags.iter().filter(|t| !now.tags.contains(t)).collect();
    if !tags_removed.is_empty() {
        out.insert("tags_removed".into(), json!(tags_removed));
    }
    let server = changed_fields(&old.server_state, &now.server_state);
    if !server.is_empty() {
        out.insert("server_state".into(), Value::Object(server));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(torrents: &[(&str, i64)], tags: &[&str]) -> MainData {
        MainData {
            torrents: torrents
                .iter()
                .map(|(h, p)| {
                    let mut m = Map::new();
                    m.insert("name".into(), json!(h));
                    m.insert("progress".into(), json!(p));
                    (h.to_string(), m)
                })
                .collect(),
            categories: BTreeMap::new(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            server_state: Map::new(),
        }
    }

    #[test]
    fn a_delta_carries_only_what_changed() {
        let mut h = SyncHistory::default();
        let first = h.respond(0, data(&[("a", 0), ("b", 0)], &["x"]));
        assert_eq!(first["full_update"], json!(true));
        let rid = first["rid"].as_u64().unwrap();
        let second = h.respond(rid, data(&[("a", 1), ("c", 0)], &["y"]));
        assert_eq!(second.get("full_update"), None);
        assert_eq!(second["torrents"]["a"], json!({"progress": 1}));
        assert_eq!(second["torrents"]["c"]["name"], json!("c"));
        assert_eq!(second["torrents_removed"], json!(["b"]));
        assert_eq!(second["tags"], json!(["y"]));
        assert_eq!(second["tags_removed"], json!(["x"]));
        let rid2 = second["rid"].as_u64().unwrap();
        let same = h.respond(rid2, data(&[("a", 1), ("c", 0)], &["y"]));
        assert_eq!(same.as_object().unwrap().len(), 1, "only the rid: {same}");
        // An unknown rid gets everything again.
        assert_eq!(h.respond(999, data(&[], &[]))["full_update"], json!(true));
    }
}
