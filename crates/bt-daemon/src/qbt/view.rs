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
    fields(t)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The torrent object's fields, always in the same order.
pub fn fields(t: &TorrentSnapshot) -> Vec<(&'static str, Value)> {
    let r = &t.record;
    let hash = r.info_hash.to_hex();
    let content = t.content_path().to_string_lossy().into_owned();
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
    let trackers = t.trackers();
    let tracker = trackers
        .first()
        .and_then(|tier| tier.first())
        .cloned()
        .unwrap_or_default();
    let trackers_count: usize = trackers.iter().map(Vec::len).sum();
    let active =
        matches!(t.phase, Phase::Downloading | Phase::Seeding) && (dlspeed > 0 || upspeed > 0);
    vec![
        ("added_on", json!(r.added_on)),
        ("amount_left", json!(left)),
        ("auto_tmm", json!(r.auto_tmm)),
        ("availability", json!(if peers > 0 { 1.0 } else { 0.0 })),
        ("category", json!(r.category)),
        (
            "comment",
            json!(t
                .meta
                .as_ref()
                .and_then(|m| m.comment.clone())
                .unwrap_or_default()),
        ),
        ("completed", json!(completed)),
        ("completion_on", json!(r.completion_on.unwrap_or(-1))),
        ("content_path", json!(content)),
        (
            "dl_limit",
            json!(if r.dl_limit == 0 {
                -1
            } else {
                r.dl_limit as i64
            }),
        ),
        ("dlspeed", json!(dlspeed)),
        ("download_path", json!("")),
        ("downloaded", json!(r.downloaded)),
        ("downloaded_session", json!(t.downloaded_session)),
        ("eta", json!(eta)),
        ("f_l_piece_prio", json!(r.first_last)),
        ("force_start", json!(r.force_start)),
        ("has_metadata", json!(t.meta.is_some())),
        ("hash", json!(hash)),
        (
            "inactive_seeding_time_limit",
            json!(r.inactive_seeding_time_limit),
        ),
        ("infohash_v1", json!(hash)),
        ("infohash_v2", json!("")),
        (
            "last_activity",
            json!(if active {
                chrono_now()
            } else {
                r.last_activity
            }),
        ),
        ("magnet_uri", json!(magnet)),
        ("max_inactive_seeding_time", json!(-1)),
        ("max_ratio", json!(-1)),
        ("max_seeding_time", json!(-1)),
        ("name", json!(r.name)),
        ("num_complete", json!(0)),
        ("num_incomplete", json!(0)),
        ("num_leechs", json!(0)),
        ("num_seeds", json!(peers)),
        ("popularity", json!(0)),
        (
            "priority",
            json!(if matches!(t.phase, Phase::Seeding) {
                0
            } else {
                r.queue_position as i64 + 1
            }),
        ),
        (
            "private",
            json!(t.meta.as_ref().is_some_and(|m| m.info.private)),
        ),
        ("progress", json!(t.progress())),
        ("ratio", json!(ratio)),
        ("ratio_limit", json!(r.ratio_limit)),
        ("reannounce", json!(0)),
        ("root_path", json!(content)),
        ("save_path", json!(r.save_path)),
        ("seeding_time", json!(r.seeding_secs)),
        ("seeding_time_limit", json!(r.seeding_time_limit)),
        ("seen_complete", json!(r.completion_on.unwrap_or(-1))),
        ("seq_dl", json!(r.sequential)),
        ("size", json!(size)),
        ("state", json!(state(t))),
        ("super_seeding", json!(false)),
        ("tags", json!(r.tags.join(", "))),
        ("time_active", json!(r.active_secs)),
        ("total_size", json!(t.total_size())),
        ("tracker", json!(tracker)),
        ("trackers_count", json!(trackers_count)),
        (
            "up_limit",
            json!(if r.up_limit == 0 {
                -1
            } else {
                r.up_limit as i64
            }),
        ),
        ("uploaded", json!(r.uploaded)),
        ("uploaded_session", json!(t.uploaded_session)),
        ("upspeed", json!(upspeed)),
    ]
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
