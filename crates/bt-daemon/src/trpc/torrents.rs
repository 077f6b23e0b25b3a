//! The torrent methods with more to them than one call on the daemon: `torrent-get`,
//! `torrent-add` (its sources and file choices), `torrent-set` and `torrent-rename-path`.

use bt_meta::InfoHash;
use serde_json::{json, Map, Value};

use super::request::{
    self, opt_bool, opt_f64, opt_i64, opt_indices, opt_str, opt_strings, RequestError, Selector,
};
use super::{daemon_error, none, trackers, unix_now, view, Outcome, Rpc};
use crate::daemon::{AddOptions, Daemon, DaemonError, Source};

pub(super) async fn torrent_get(rpc: &Rpc, a: &Map<String, Value>) -> Outcome {
    let fields = opt_strings(a, "fields")?.ok_or("torrent-get: no fields")?;
    let sel = request::selector(a)?;
    let table = opt_str(a, "format")? == Some("table");
    let picked = rpc.select(&sel);
    let d = rpc.daemon();
    let settings = d.settings();
    let wants = |names: &[&str]| fields.iter().any(|f| names.contains(&f.as_str()));
    let now = unix_now();
    let mut rows = Vec::with_capacity(picked.len());
    for (id, t) in &picked {
        let hash = t.record.info_hash;
        let extra = view::Extra {
            id: *id,
            file_progress: if wants(view::FILE_FIELDS) {
                d.file_progress(&hash).await
            } else {
                None
            },
            tracker: if wants(&["trackerStats"]) {
                d.session()
                    .tracker_status(&hash)
                    .map(|rx| rx.borrow().clone())
            } else {
                None
            },
            piece_states: if wants(&["pieces"]) {
                d.piece_states(&hash).await
            } else {
                None
            },
            peers: if wants(&["peers"]) {
                Some(d.peers(&hash).await)
            } else {
                None
            },
            now,
        };
        let values: Vec<(String, Value)> = fields
            .iter()
            .filter_map(|f| view::field(t, f, &settings, &extra).map(|v| (f.clone(), v)))
            .collect();
        rows.push(values);
    }
    let torrents = if table {
        let mut out = vec![json!(fields)];
        out.extend(
            rows.into_iter()
                .map(|r| Value::Array(r.into_iter().map(|(_, v)| v).collect())),
        );
        out
    } else {
        rows.into_iter()
            .map(|r| Value::Object(r.into_iter().collect()))
            .collect()
    };
    let mut out = Map::new();
    out.insert("torrents".into(), Value::Array(torrents));
    if sel == Selector::RecentlyActive {
        out.insert("removed".into(), json!(rpc.ids().recently_removed()));
    }
    Ok(out)
}

/// Where a `torrent-add`'s `filename` points.
fn source_of_filename(name: &str) -> Result<SourceKind, String> {
    let name = name.trim();
    if name.starts_with("magnet:") {
        Ok(SourceKind::Ready(Source::Magnet(name.to_string())))
    } else if name.len() == 40 && InfoHash::from_hex(name).is_some() {
        Ok(SourceKind::Ready(Source::Magnet(format!(
            "magnet:?xt=urn:btih:{name}"
        ))))
    } else if name.starts_with("http://") || name.starts_with("https://") {
        Ok(SourceKind::Url(name.to_string()))
    } else if std::path::Path::new(name).is_absolute() {
        Ok(SourceKind::File(name.into()))
    } else {
        Err(format!(
            "filename {name:?}: not a magnet link, info-hash, http(s) URL or absolute path"
        ))
    }
}

enum SourceKind {
    Ready(Source),
    Url(String),
    File(std::path::PathBuf),
}

pub(super) async fn torrent_add(rpc: &Rpc, a: &Map<String, Value>) -> Outcome {
    use base64::Engine as _;
    let source = if let Some(b64) = opt_str(a, "metainfo")? {
        let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned)
            .map_err(|e| format!("metainfo: not base64: {e}"))?;
        Source::Torrent(bytes)
    } else if let Some(name) = opt_str(a, "filename")? {
        match source_of_filename(name)? {
            SourceKind::Ready(s) => s,
            SourceKind::Url(url) => {
                let bytes = tokio::task::spawn_blocking(move || crate::qbt::fetch_torrent(&url))
                    .await
                    .map_err(|e| e.to_string())??;
                Source::Torrent(bytes)
            }
            SourceKind::File(path) => {
                let meta =
                    std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                if meta.len() > crate::qbt::MAX_BODY as u64 {
                    return Err(format!("{}: too large for a .torrent", path.display()));
                }
                Source::Torrent(
                    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
        }
    } else {
        return Err("torrent-add: neither metainfo nor filename".into());
    };
    let opts = AddOptions {
        save_path: opt_str(a, "download-dir")?.map(String::from),
        tags: opt_strings(a, "labels")?.unwrap_or_default(),
        stopped: opt_bool(a, "paused")?.unwrap_or(false),
        ..AddOptions::default()
    };
    let files = FileChoices::read(a)?;
    let d = rpc.daemon();
    let (hash, key) = match d.add(source, opts).await {
        Ok(h) => {
            *rpc.inner.added.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            // A magnet link has no files yet: its choices cannot apply, as in Transmission.
            if !files.is_empty() && d.torrent(&h).is_some_and(|t| t.meta.is_some()) {
                files.apply(d, &h).await?;
            }
            (h, "torrent-added")
        }
        Err(DaemonError::Duplicate(h)) => (h, "torrent-duplicate"),
        Err(e) => return Err(daemon_error(e)),
    };
    rpc.sync_ids();
    let id = rpc.ids().id(&hash).unwrap_or(0);
    let name = d.torrent(&hash).map(|t| t.record.name).unwrap_or_default();
    let mut out = Map::new();
    out.insert(
        key.into(),
        json!({"id": id, "name": name, "hashString": hash.to_hex()}),
    );
    Ok(out)
}

/// `files-wanted`, `files-unwanted` and `priority-*` of `torrent-add` and `torrent-set`.
#[derive(Debug, Default)]
struct FileChoices {
    wanted: Option<Vec<usize>>,
    unwanted: Option<Vec<usize>>,
    /// (Transmission priority, files).
    priorities: Vec<(i64, Vec<usize>)>,
}

impl FileChoices {
    fn read(a: &Map<String, Value>) -> Result<FileChoices, RequestError> {
        let mut priorities = Vec::new();
        for (key, p) in [
            ("priority-low", -1),
            ("priority-normal", 0),
            ("priority-high", 1),
        ] {
            if let Some(files) = opt_indices(a, key)? {
                priorities.push((p, files));
            }
        }
        Ok(FileChoices {
            wanted: opt_indices(a, "files-wanted")?,
            unwanted: opt_indices(a, "files-unwanted")?,
            priorities,
        })
    }

    fn is_empty(&self) -> bool {
        self.wanted.is_none() && self.unwanted.is_none() && self.priorities.is_empty()
    }

    /// Applies them: wanted and unwanted first, then priorities to the wanted files
    /// (an unwanted file keeps qBittorrent's "skip"). An empty list means every file.
    async fn apply(&self, d: &Daemon, hash: &InfoHash) -> Result<(), String> {
        let t = d
            .torrent(hash)
            .ok_or_else(|| format!("no torrent {hash}"))?;
        let Some(meta) = &t.meta else {
            return Err("its metadata has not arrived yet: no files to choose from".into());
        };
        let n = crate::priorities::visible_files(meta).len();
        let every = |list: &Vec<usize>| {
            if list.is_empty() {
                (0..n).collect()
            } else {
                list.clone()
            }
        };
        let mut prios: Vec<u8> = (0..n)
            .map(|i| crate::priorities::file_priority(&t.record.file_priorities, i))
            .collect();
        if let Some(bad) = [&self.wanted, &self.unwanted]
            .into_iter()
            .flatten()
            .chain(self.priorities.iter().map(|(_, l)| l))
            .flatten()
            .find(|i| **i >= n)
        {
            return Err(format!("file {bad}: the torrent has {n} files"));
        }
        if let Some(list) = &self.wanted {
            for i in every(list) {
                if prios[i] == crate::priorities::SKIP {
                    prios[i] = crate::priorities::NORMAL;
                }
            }
        }
        if let Some(list) = &self.unwanted {
            for i in every(list) {
                prios[i] = crate::priorities::SKIP;
            }
        }
        for (p, list) in &self.priorities {
            for i in every(list) {
                if prios[i] != crate::priorities::SKIP {
                    prios[i] = view::qbt_priority(*p);
                }
            }
        }
        // One call per priority value in use.
        for value in [0u8, 1, 6, 7] {
            let files: Vec<usize> = (0..n).filter(|&i| prios[i] == value).collect();
            if !files.is_empty() {
                d.set_file_priority(hash, &files, value)
                    .await
                    .map_err(daemon_error)?;
            }
        }
        Ok(())
    }
}

/// A share-limit mode and value of `torrent-set` as the record's number (-2 global,
/// -1 none, else the value); `None` when neither is given.
fn share_limit(mode: Option<i64>, value: Option<f64>, current: f64) -> Result<Option<f64>, String> {
    match (mode, value) {
        (None, None) => Ok(None),
        (Some(0), _) => Ok(Some(-2.0)),
        (Some(2), _) => Ok(Some(-1.0)),
        (Some(1), Some(v)) | (None, Some(v)) if v >= 0.0 => Ok(Some(v)),
        (Some(1), None) => Ok(Some(current.max(0.0))),
        (_, Some(v)) if v < 0.0 => Err(format!("limit {v}: negative")),
        (Some(m), _) => Err(format!("mode {m}: not 0, 1 or 2")),
        (None, Some(v)) => Err(format!("limit {v}: not a number")),
    }
}

pub(super) async fn torrent_set(rpc: &Rpc, a: &Map<String, Value>) -> Outcome {
    if opt_bool(a, "honorsSessionLimits")? == Some(false) {
        return Err("honorsSessionLimits: bt always applies the global limits too".into());
    }
    if opt_i64(a, "bandwidthPriority")?.is_some_and(|p| p != 0) {
        return Err("bandwidthPriority: bt has no bandwidth priorities".into());
    }
    let hashes = rpc.hashes(a)?;
    let d = rpc.daemon();
    let files = FileChoices::read(a)?;
    let tracker_edits = trackers::TrackerEdits::read(a)?;
    let ratio_mode = opt_i64(a, "seedRatioMode")?;
    let ratio = opt_f64(a, "seedRatioLimit")?;
    let idle_mode = opt_i64(a, "seedIdleMode")?;
    let idle = opt_i64(a, "seedIdleLimit")?;
    let labels = opt_strings(a, "labels")?;
    let location = opt_str(a, "location")?;
    let limits = [
        (
            true,
            opt_i64(a, "downloadLimit")?,
            opt_bool(a, "downloadLimited")?,
        ),
        (
            false,
            opt_i64(a, "uploadLimit")?,
            opt_bool(a, "uploadLimited")?,
        ),
    ];
    for hash in &hashes {
        let Some(t) = d.torrent(hash) else { continue };
        let r = &t.record;
        for (download, value, limited) in limits {
            let current = if download { r.dl_limit } else { r.up_limit };
            let new = match (limited, value) {
                (Some(false), _) => Some(0),
                (Some(true), Some(v)) => Some(v.max(0) as u64 * view::SPEED_K),
                (None, Some(v)) if current > 0 => Some(v.max(0) as u64 * view::SPEED_K),
                _ => None,
            };
            if let Some(new) = new.filter(|n| *n != current) {
                d.set_torrent_limit(&[*hash], download, new);
            }
        }
        let ratio_limit =
            share_limit(ratio_mode, ratio, r.ratio_limit).map_err(|e| format!("seedRatio: {e}"))?;
        let idle_limit = share_limit(
            idle_mode,
            idle.map(|m| m as f64),
            r.inactive_seeding_time_limit as f64,
        )
        .map_err(|e| format!("seedIdle: {e}"))?;
        if ratio_limit.is_some() || idle_limit.is_some() {
            d.set_share_limits(
                &[*hash],
                ratio_limit.unwrap_or(r.ratio_limit),
                r.seeding_time_limit,
                idle_limit.map_or(r.inactive_seeding_time_limit, |v| v as i64),
            );
        }
        if let Some(labels) = &labels {
            let gone: Vec<String> = r
                .tags
                .iter()
                .filter(|t| !labels.contains(t))
                .cloned()
                .collect();
            let new: Vec<String> = labels
                .iter()
                .filter(|l| !l.trim().is_empty() && !r.tags.contains(l))
                .cloned()
                .collect();
            if !gone.is_empty() {
                d.tag(&[*hash], &gone, false);
            }
            if !new.is_empty() {
                d.tag(&[*hash], &new, true);
            }
        }
        if !files.is_empty() {
            files.apply(d, hash).await?;
        }
        if !tracker_edits.is_empty() {
            d.edit_trackers(hash, |tiers| {
                tracker_edits.apply(tiers).map_err(DaemonError::Invalid)
            })
            .await
            .map_err(daemon_error)?;
        }
    }
    if let Some(location) = location {
        d.set_location(&hashes, std::path::Path::new(location))
            .map_err(daemon_error)?;
    }
    none()
}

/// Renames a file or folder of a torrent on disk (`path` as `torrent-get` names files,
/// `name` the new last part); renaming its top folder or single file renames the torrent.
pub(super) async fn rename_path(rpc: &Rpc, a: &Map<String, Value>) -> Outcome {
    let hashes = rpc.hashes(a)?;
    let [hash] = hashes.as_slice() else {
        return Err("torrent-rename-path: name exactly one torrent".into());
    };
    let path = opt_str(a, "path")?
        .ok_or("torrent-rename-path: no path")?
        .trim_end_matches('/');
    let name = opt_str(a, "name")?.ok_or("torrent-rename-path: no name")?;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("torrent-rename-path: {name:?} is not a file name"));
    }
    let d = rpc.daemon();
    let t = d
        .torrent(hash)
        .ok_or_else(|| format!("no torrent {hash}"))?;
    let new_path = match path.rsplit_once('/') {
        Some((parent, _)) => format!("{parent}/{name}"),
        None => name.to_string(),
    };
    let prefix = format!("{path}/");
    let moves: Vec<(String, String)> = t
        .file_names()
        .into_iter()
        .filter_map(|f| {
            if f == path {
                Some((f, new_path.clone()))
            } else {
                let rest = f.strip_prefix(&prefix)?.to_string();
                Some((f, format!("{new_path}/{rest}")))
            }
        })
        .collect();
    if moves.is_empty() {
        return Err(format!("torrent-rename-path: no file or folder {path:?}"));
    }
    for (from, to) in moves {
        d.rename_file(hash, &from, &to)
            .await
            .map_err(daemon_error)?;
    }
    if path == t.record.name {
        d.rename(hash, name).map_err(daemon_error)?;
    }
    let mut out = Map::new();
    out.insert("path".into(), json!(path));
    out.insert("name".into(), json!(name));
    out.insert("id".into(), json!(rpc.ids().id(hash).unwrap_or(0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_limits_follow_the_mode() {
        assert_eq!(share_limit(None, None, 1.0), Ok(None));
        assert_eq!(share_limit(Some(0), Some(3.0), 1.0), Ok(Some(-2.0)));
        assert_eq!(share_limit(Some(2), None, 1.0), Ok(Some(-1.0)));
        assert_eq!(share_limit(Some(1), Some(3.0), 1.0), Ok(Some(3.0)));
        assert_eq!(share_limit(Some(1), None, -2.0), Ok(Some(0.0)));
        assert_eq!(share_limit(None, Some(0.5), -2.0), Ok(Some(0.5)));
        assert!(share_limit(Some(5), None, 1.0).is_err());
        assert!(share_limit(Some(1), Some(-3.0), 1.0).is_err());
    }

    #[test]
    fn filenames_name_magnets_urls_and_files() {
        let ok = |s: &str| source_of_filename(s).is_ok();
        assert!(ok(
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"
        ));
        assert!(ok("0123456789abcdef0123456789abcdef01234567"));
        assert!(ok("http://127.0.0.1/x.torrent"));
        assert!(ok("/tmp/x.torrent"));
        assert!(!ok("x.torrent"));
        assert!(!ok("ftp://x"));
    }
}
