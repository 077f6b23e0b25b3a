//! The daemon's model in qBittorrent's JSON shapes: the torrent object of `torrents/info`
//! and `sync/maindata`, and its state strings.

use serde_json::{json, Map, Value};

use crate::daemon::{Phase, TorrentSnapshot};

/// qBittorrent's state string for a torrent (Web API 2.11: `stoppedDL`, not `pausedDL`).
pub fn state(t: &TorrentSnapshot) -> &'static str {
    let complete =
        t.record.completion_on.is_some() || t.stats.as_ref().is_some_and(|s| s.state.is_complete());
    match &t.phase {
        Phase::Metadata => "metaDL",
        Phase::Checking if complete => "checkingUP",
        Phase::Checking => "checkingDL",
        Phase::Stopped if complete => "stoppedUP",
        Phase::Stopped => "stoppedDL",
        Phase::Error(_) => "error",
        Phase::Moving(_) => "moving",
        Phase::Queued if complete => "queuedUP",
        Phase::Queued => "queuedDL",
        Phase::Downloading => {
            if t.stats.as_ref().is_some_and(|s| s.download_rate > 0) {
                "downloading"
            } else {
                "stalledDL"
            }
        }
        Phase::Seeding => {
            if t.stats.as_ref().is_some_and(|s| s.upload_rate > 0) {
                "uploading"
            } else {
                "stalledUP"
            }
        }
    }
}

/// The torrent object, with every field qBittorrent's `torrents/info` has.
pub fn torrent(t: &TorrentSnapshot) -> Map<String, Value> {
    let r = &t.record;
    let hash = r.info_hash.to_hex();
    let size = t.size();
    let completed = t.completed();
    let (dlspeed, upspeed, peers) = t
        .stats
        .as_ref()
        .map_or((0, 0, 0), |s| (s.download_rate, s.upload_rate, s.peers));
    let left = size.saturating_sub(completed);
    // qBittorrent's "infinity" is 100 days.
    let eta: u64 = if left == 0 {
        0
    } else {
        left.checked_div(dlspeed).unwrap_or(8_640_000)
    };

    let ratio = crate::share::ratio(r.uploaded, r.downloaded, completed);
    // JSON has no infinity; qBittorrent caps the ratio it shows at 9999.
    let ratio = if ratio.is_finite() {
        ratio.min(9999.0)
    } else {
        9999.0
    };

    let magnet = t
        .meta
        .as_ref()
        .map(|m| m.magnet().to_uri())
        .or_else(|| r.magnet.clone())
        .unwrap_or_default();
    let trackers = t.meta.as_ref().map(|m| m.trackers()).unwrap_or_default();
    let tracker = trackers
        .first()
        .and_then(|tier| tier.first())
        .cloned()
        .unwrap_or_default();
    let trackers_count: usize = trackers.iter().map(Vec::len).sum();
    let active =
        matches!(t.phase, Phase::Downloading | Phase::Seeding) && (dlspeed > 0 || upspeed > 0);
    let obj = json!({
        "added_on": r.added_on,
        "amount_left": left,
        "auto_tmm": false,
        "availability": if peers > 0 { 1.0 } else { 0.0 },
        "category": r.category,
        "comment": t.meta.as_ref().and_then(|m| m.comment.clone()).unwrap_or_default(),
        "completed": completed,
        "completion_on": r.completion_on.unwrap_or(-1),
        "content_path": t.content_path().to_string_lossy(),
        "dl_limit": if r.dl_limit == 0 { -1 } else { r.dl_limit as i64 },
        "dlspeed": dlspeed,
        "download_path": "",
        "downloaded": r.downloaded,
        "downloaded_session": t.downloaded_session,
        "eta": eta,
        "f_l_piece_prio": r.first_last,
        "force_start": r.force_start,
        "has_metadata": t.meta.is_some(),
        "hash": hash,
        "inactive_seeding_time_limit": r.inactive_seeding_time_limit,
        "infohash_v1": hash,
        "infohash_v2": "",
        "last_activity": if active { chrono_now() } else { r.last_activity },
        "magnet_uri": magnet,
        "max_inactive_seeding_time": -1,
        "max_ratio": -1,
        "max_seeding_time": -1,
        "name": r.name,
        "num_complete": 0,
        "num_incomplete": 0,
        "num_leechs": 0,
        "num_seeds": peers,
        "popularity": 0,
        "priority": if matches!(t.phase, Phase::Seeding) { 0 } else { r.queue_position as i64 + 1 },
        "private": t.meta.as_ref().is_some_and(|m| m.info.private),
        "progress": t.progress(),
        "ratio": ratio,
        "ratio_limit": r.ratio_limit,
        "reannounce": 0,
        "root_path": t.content_path().to_string_lossy(),
        "save_path": r.save_path,
        "seeding_time": r.seeding_secs,
        "seeding_time_limit": r.seeding_time_limit,
        "seen_complete": r.completion_on.unwrap_or(-1),
        "seq_dl": r.sequential,
        "size": size,
        "state": state(t),
        "super_seeding": false,
        "tags": r.tags.join(", "),
        "time_active": r.active_secs,
        "total_size": t.total_size(),
        "tracker": tracker,
        "trackers_count": trackers_count,
        "up_limit": if r.up_limit == 0 { -1 } else { r.up_limit as i64 },
        "uploaded": r.uploaded,
        "uploaded_session": t.uploaded_session,
        "upspeed": upspeed,
    });
    match obj {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether `t` passes `torrents/info`'s `filter`.
pub fn matches_filter(t: &TorrentSnapshot, filter: &str) -> bool {
    let s = state(t);
    let downloading = matches!(
        s,
        "downloading" | "stalledDL" | "metaDL" | "checkingDL" | "queuedDL" | "forcedDL"
    );
    let seeding = matches!(
        s,
        "uploading" | "stalledUP" | "checkingUP" | "queuedUP" | "forcedUP"
    );
    let stopped = matches!(s, "stoppedDL" | "stoppedUP");
    let speed = t
        .stats
        .as_ref()
        .is_some_and(|st| st.download_rate > 0 || st.upload_rate > 0);
    match filter {
        "" | "all" => true,
        "downloading" => downloading,
        "seeding" => seeding,
        "completed" => t.record.completion_on.is_some() || s.ends_with("UP"),
        "stopped" | "paused" => stopped,
        "running" | "resumed" => !stopped,
        "active" => speed,
        "inactive" => !speed,
        "stalled" => matches!(s, "stalledUP" | "stalledDL"),
        "stalled_uploading" => s == "stalledUP",
        "stalled_downloading" => s == "stalledDL",
        "checking" => s.starts_with("checking"),
        "moving" => s == "moving",
        "errored" => s == "error" || s == "missingFiles",
        _ => false,
    }
}
