//! The daemon's model in Transmission's shapes: the fields of `torrent-get` (legacy
//! camelCase names), status codes, file priorities, and speeds in Transmission's units.

use bt_engine::proto::PeerSummary;
use serde_json::{json, Value};

use crate::daemon::{Phase, TorrentSnapshot};
use crate::priorities;
use crate::settings::Settings;

/// Bytes in Transmission's speed "kilobyte" (its `speed-bytes`): limits travel in kB/s.
pub const SPEED_K: u64 = 1000;

/// Transmission's status codes.
pub mod status {
    /// Stopped.
    pub const STOPPED: i64 = 0;
    /// Queued to check its data.
    pub const CHECK_WAIT: i64 = 1;
    /// Checking its data.
    pub const CHECK: i64 = 2;
    /// Queued to download.
    pub const DOWNLOAD_WAIT: i64 = 3;
    /// Downloading.
    pub const DOWNLOAD: i64 = 4;
    /// Queued to seed.
    pub const SEED_WAIT: i64 = 5;
    /// Seeding.
    pub const SEED: i64 = 6;
}

fn complete(t: &TorrentSnapshot) -> bool {
    t.record.completion_on.is_some() || t.stats.as_ref().is_some_and(|s| s.state.is_complete())
}

/// The Transmission status code of a torrent.
pub fn status(t: &TorrentSnapshot) -> i64 {
    match &t.phase {
        Phase::Stopped | Phase::Error(_) | Phase::Moving(_) => status::STOPPED,
        // Opening its files before the engine checks them.
        Phase::Checking if t.stats.is_none() => status::CHECK_WAIT,
        Phase::Checking => status::CHECK,
        Phase::Queued if complete(t) => status::SEED_WAIT,
        Phase::Queued => status::DOWNLOAD_WAIT,
        Phase::Metadata | Phase::Downloading => status::DOWNLOAD,
        Phase::Seeding => status::SEED,
    }
}

/// Transmission's (wanted, priority -1/0/1) for a qBittorrent file priority (0 skip,
/// 1 normal, 6 high, 7 maximum): skipped files keep priority normal.
pub fn file_priority(qbt: u8) -> (bool, i64) {
    match qbt {
        priorities::SKIP => (false, 0),
        6 | 7 => (true, 1),
        _ => (true, 0),
    }
}

/// The qBittorrent priority for a Transmission priority: qBittorrent has nothing below
/// normal, so low is normal; high is qBittorrent's high (6).
pub fn qbt_priority(transmission: i64) -> u8 {
    if transmission > 0 {
        6
    } else {
        priorities::NORMAL
    }
}

/// A limit in bytes/s (0: none) as Transmission's (limited, kB/s).
pub fn limit_k(bytes_per_sec: u64) -> (bool, u64) {
    (bytes_per_sec > 0, bytes_per_sec / SPEED_K)
}

/// A share limit of the record (-2 the global one, -1 none, else its own) as
/// Transmission's mode (0 global, 1 its own, 2 unlimited).
pub fn limit_mode(own: f64) -> i64 {
    if own == -2.0 {
        0
    } else if own < 0.0 {
        2
    } else {
        1
    }
}

/// What `torrent-get` needs beyond the snapshot.
#[derive(Debug, Default)]
pub struct Extra {
    /// The torrent's Transmission id.
    pub id: u64,
    /// Each visible file's verified fraction (only when files were asked for).
    pub file_progress: Option<Vec<f64>>,
    /// Its trackers' latest answers, while it runs.
    pub tracker: Option<bt_engine::sources::announce::AnnouncerStatus>,
    /// Each piece's qBittorrent state (only when `pieces` was asked for).
    pub piece_states: Option<Vec<u8>>,
    /// Its connected peers (only when `peers` was asked for).
    pub peers: Option<Vec<PeerSummary>>,
    /// Now, in seconds since the Unix epoch.
    pub now: i64,
}

/// Fields that need [`Extra::file_progress`].
pub const FILE_FIELDS: &[&str] = &["files", "fileStats"];

/// The value of one `torrent-get` field (`None`: a field bt does not know).
pub fn field(t: &TorrentSnapshot, name: &str, s: &Settings, x: &Extra) -> Option<Value> {
    let r = &t.record;
    let meta = t.meta.as_deref();
    let size = t.size();
    let completed = t.completed();
    let left = size.saturating_sub(completed);
    let (rate_down, rate_up, peers) = t
        .stats
        .as_ref()
        .map_or((0, 0, 0), |st| (st.download_rate, st.upload_rate, st.peers));
    let running = matches!(
        t.phase,
        Phase::Downloading | Phase::Seeding | Phase::Metadata
    );
    // Names with the user's renames, beside the lengths of the same (visible) files.
    let files = || -> Vec<(String, u64)> {
        let lengths = meta.map(|m| {
            m.info
                .files()
                .iter()
                .filter(|f| !f.is_pad())
                .map(|f| f.length())
                .collect::<Vec<_>>()
        });
        t.file_names()
            .into_iter()
            .zip(lengths.unwrap_or_default())
            .collect()
    };
    let prio = |i: usize| file_priority(priorities::file_priority(&r.file_priorities, i));
    let done_bytes = |i: usize, len: u64| -> u64 {
        let frac = x
            .file_progress
            .as_ref()
            .and_then(|p| p.get(i).copied())
            .unwrap_or(0.0);
        ((frac * len as f64) as u64).min(len)
    };
    let ratio = crate::share::ratio(r.uploaded, r.downloaded, completed);
    let v = match name {
        "activityDate" => json!(if running && (rate_down > 0 || rate_up > 0) {
            x.now
        } else {
            r.last_activity
        }),
        "addedDate" => json!(r.added_on),
        "bandwidthPriority" => json!(0),
        "comment" => json!(meta.and_then(|m| m.comment.clone()).unwrap_or_default()),
        "corruptEver" => json!(t.stats.as_ref().map_or(0, |st| u64::from(st.hash_failures)
            * meta.map_or(0, |m| u64::from(m.info.piece_len)))),
        "creator" => json!(meta.and_then(|m| m.created_by.clone()).unwrap_or_default()),
        "dateCreated" => json!(meta.and_then(|m| m.creation_date).unwrap_or(0)),
        "desiredAvailable" => json!(if peers > 0 { left } else { 0 }),
        "doneDate" => json!(r.completion_on.unwrap_or(0)),
        "downloadDir" => json!(r.save_path),
        "downloadedEver" => json!(r.downloaded),
        "downloadLimit" => json!(limit_k(r.dl_limit).1),
        "downloadLimited" => json!(limit_k(r.dl_limit).0),
        "editDate" => json!(0),
        "error" => json!(if matches!(t.phase, Phase::Error(_)) { 3 } else { 0 }),
        "errorString" => json!(match &t.phase {
            Phase::Error(e) => e.clone(),
            _ => String::new(),
        }),
        "eta" => json!(eta(left, rate_down, running)),
        "etaIdle" => json!(-1),
        "file-count" => json!(files().len()),
        "files" => Value::Array(
            files()
                .into_iter()
                .enumerate()
                .map(|(i, (name, len))| {
                    json!({"name": name, "length": len, "bytesCompleted": done_bytes(i, len)})
                })
                .collect(),
        ),
        "fileStats" => Value::Array(
            files()
                .into_iter()
                .enumerate()
                .map(|(i, (_, len))| {
                    let (wanted, priority) = prio(i);
                    json!({"bytesCompleted": done_bytes(i, len), "wanted": wanted, "priority": priority})
                })
                .collect(),
        ),
        "group" => json!(""),
        "hashString" => json!(r.info_hash.to_hex()),
        "haveUnchecked" => json!(0),
        "haveValid" => json!(completed),
        "honorsSessionLimits" => json!(true),
        "id" => json!(x.id),
        "isFinished" => json!(false),
        "isPrivate" => json!(meta.is_some_and(|m| m.info.private)),
        "isStalled" => json!(running && rate_down == 0 && rate_up == 0),
        "labels" => json!(r.tags),
        "leftUntilDone" => json!(left),
        "magnetLink" => json!(meta
            .map(|m| m.magnet().to_uri())
            .or_else(|| r.magnet.clone())
            .unwrap_or_default()),
        "manualAnnounceTime" => json!(-1),
        "maxConnectedPeers" | "peer-limit" => json!(s.max_connec_per_torrent),
        "metadataPercentComplete" => json!(if meta.is_some() { 1.0 } else { 0.0 }),
        "name" => json!(r.name),
        "peers" => Value::Array(
            x.peers
                .iter()
                .flatten()
                .map(|p| peer(p, meta.map_or(0, |m| m.info.num_pieces())))
                .collect(),
        ),
        "peersConnected" => json!(peers),
        "peersFrom" => json!({
            "fromCache": 0, "fromDht": 0, "fromIncoming": 0, "fromLpd": 0,
            "fromLtep": 0, "fromPex": 0, "fromTracker": 0,
        }),
        "peersGettingFromUs" => json!(if rate_up > 0 { peers } else { 0 }),
        "peersSendingToUs" => json!(if rate_down > 0 { peers } else { 0 }),
        "percentComplete" => json!(match t.total_size() {
            0 => 0.0,
            total => t.stats.as_ref().map_or(completed, |st| st.bytes_have) as f64 / total as f64,
        }),
        "percentDone" => json!(t.progress()),
        "pieceCount" => json!(meta.map_or(0, |m| m.info.num_pieces())),
        "pieceSize" => json!(meta.map_or(0, |m| m.info.piece_len)),
        "pieces" => json!(pieces_bitfield(x.piece_states.as_deref().unwrap_or(&[]))),
        "primary-mime-type" => json!("application/octet-stream"),
        "priorities" => Value::Array(
            (0..files().len()).map(|i| json!(prio(i).1)).collect(),
        ),
        "queuePosition" => json!(r.queue_position),
        "rateDownload" => json!(rate_down),
        "rateUpload" => json!(rate_up),
        "recheckProgress" => json!(match (&t.phase, &t.stats) {
            (Phase::Checking, Some(st)) if st.pieces_total > 0 =>
                f64::from(st.pieces_have) / f64::from(st.pieces_total),
            _ => 0.0,
        }),
        "secondsDownloading" => json!(r.active_secs.saturating_sub(r.seeding_secs)),
        "secondsSeeding" => json!(r.seeding_secs),
        "seedIdleLimit" => json!(own_or_global(
            r.inactive_seeding_time_limit as f64,
            s.max_inactive_seeding_time as f64
        ) as i64),
        "seedIdleMode" => json!(limit_mode(r.inactive_seeding_time_limit as f64)),
        "seedRatioLimit" => json!(own_or_global(r.ratio_limit, s.max_ratio)),
        "seedRatioMode" => json!(limit_mode(r.ratio_limit)),
        "sequentialDownload" => json!(r.sequential),
        "sizeWhenDone" => json!(size),
        "source" => json!(""),
        "startDate" => json!(if running { r.added_on } else { 0 }),
        "status" => json!(status(t)),
        "totalSize" => json!(t.total_size()),
        "torrentFile" => json!(""),
        "trackers" => Value::Array(
            trackers(t)
                .into_iter()
                .enumerate()
                .map(|(id, (tier, url))| json!({"id": id, "tier": tier, "announce": url, "scrape": ""}))
                .collect(),
        ),
        "trackerList" => json!(trackers(t)
            .iter()
            .map(|(_, url)| url.as_str())
            .collect::<Vec<_>>()
            .join("\n")),
        "trackerStats" => Value::Array(
            trackers(t)
                .into_iter()
                .enumerate()
                .map(|(id, (tier, url))| tracker_stats(id, tier, &url, x.tracker.as_ref()))
                .collect(),
        ),
        "uploadedEver" => json!(r.uploaded),
        "uploadLimit" => json!(limit_k(r.up_limit).1),
        "uploadLimited" => json!(limit_k(r.up_limit).0),
        "uploadRatio" => json!(if ratio.is_finite() { ratio } else { -2.0 }),
        "wanted" => Value::Array(
            (0..files().len())
                .map(|i| json!(i64::from(prio(i).0)))
                .collect(),
        ),
        "webseeds" => json!(meta.map(|m| m.web_seeds()).unwrap_or_default()),
        "webseedsSendingToUs" => json!(0),
        _ => return None,
    };
    Some(v)
}

/// A connected peer as Transmission shows it. Its flags: `D`/`d` we download from it /
/// would but it chokes us, `U`/`u` we upload to it / it wants to but we choke it, `K` it
/// unchoked us but we want nothing, `?` we unchoked it but it wants nothing, `I` incoming.
fn peer(p: &PeerSummary, num_pieces: u32) -> Value {
    let downloading = p.peer_unchoked && p.am_interested;
    let uploading = p.am_unchoked && p.peer_interested;
    let mut flags = String::new();
    match (p.am_interested, p.peer_unchoked) {
        (true, true) => flags.push('D'),
        (true, false) => flags.push('d'),
        (false, true) => flags.push('K'),
        (false, false) => {}
    }
    match (p.peer_interested, p.am_unchoked) {
        (true, true) => flags.push('U'),
        (true, false) => flags.push('u'),
        (false, true) => flags.push('?'),
        (false, false) => {}
    }
    if !p.outgoing {
        flags.push('I');
    }
    let progress = if num_pieces == 0 {
        0.0
    } else {
        (f64::from(p.pieces) / f64::from(num_pieces)).min(1.0)
    };
    json!({
        "address": p.addr.ip().to_string(),
        "port": p.addr.port(),
        "clientName": crate::qbt::peers::client_name(&p.id.0),
        "clientIsChoked": !p.peer_unchoked,
        "clientIsInterested": p.am_interested,
        "peerIsChoked": !p.am_unchoked,
        "peerIsInterested": p.peer_interested,
        "isDownloadingFrom": downloading,
        "isUploadingTo": uploading,
        "isEncrypted": false,
        "isIncoming": !p.outgoing,
        "isUTP": false,
        "flagStr": flags,
        "progress": progress,
        "rateToClient": p.download_rate,
        "rateToPeer": p.upload_rate,
    })
}

/// Transmission's eta: seconds, -1 when it does not apply, -2 when unknown.
fn eta(left: u64, rate: u64, running: bool) -> i64 {
    if left == 0 || !running {
        -1
    } else {
        left.checked_div(rate).map_or(-2, |s| s as i64)
    }
}

/// A torrent's own share limit, or the session's where it follows the session (0 when
/// neither is set).
fn own_or_global(own: f64, global: f64) -> f64 {
    if own >= 0.0 {
        own
    } else if global >= 0.0 {
        global
    } else {
        0.0
    }
}

/// The torrent's trackers (with the user's edits) as (tier, url).
fn trackers(t: &TorrentSnapshot) -> Vec<(usize, String)> {
    t.trackers()
        .into_iter()
        .enumerate()
        .flat_map(|(tier, urls)| urls.into_iter().map(move |u| (tier, u)))
        .collect()
}

fn tracker_stats(
    id: usize,
    tier: usize,
    url: &str,
    status: Option<&bt_engine::sources::announce::AnnouncerStatus>,
) -> Value {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split('/').next().unwrap_or(rest));
    let answered = status.is_some_and(|st| st.tracker.as_deref() == Some(url));
    let failed = status
        .and_then(|st| st.last_error.as_deref())
        .filter(|e| e.contains(url));
    let count = |v: Option<u64>| v.map_or(-1, |n| n as i64);
    let (seeders, leechers, peers) = match status {
        Some(st) if answered => (count(st.seeders), count(st.leechers), st.last_peers as i64),
        _ => (-1, -1, 0),
    };
    json!({
        "id": id,
        "tier": tier,
        "announce": url,
        "scrape": "",
        "host": host,
        "sitename": "",
        "isBackup": false,
        "hasAnnounced": answered || failed.is_some(),
        "lastAnnounceSucceeded": answered,
        "lastAnnounceResult": failed.map_or_else(|| if answered { "Success".to_string() } else { String::new() }, str::to_string),
        "lastAnnouncePeerCount": peers,
        "lastAnnounceTime": 0,
        "lastAnnounceStartTime": 0,
        "lastAnnounceTimedOut": false,
        // 0 inactive, 1 waiting, 2 queued, 3 active.
        "announceState": if status.is_some_and(|st| !st.stopped) { 1 } else { 0 },
        "nextAnnounceTime": 0,
        "hasScraped": false,
        "lastScrapeSucceeded": false,
        "lastScrapeResult": "",
        "lastScrapeTime": 0,
        "lastScrapeStartTime": 0,
        "lastScrapeTimedOut": false,
        "scrapeState": 0,
        "nextScrapeTime": 0,
        "seederCount": seeders,
        "leecherCount": leechers,
        "downloadCount": -1,
    })
}

/// qBittorrent piece states (2: verified) as Transmission's base64 bitfield.
fn pieces_bitfield(states: &[u8]) -> String {
    use base64::Engine as _;
    let mut bits = vec![0u8; states.len().div_ceil(8)];
    for (i, s) in states.iter().enumerate() {
        if *s == 2 {
            bits[i / 8] |= 0x80 >> (i % 8);
        }
    }
    base64::engine::general_purpose::STANDARD.encode(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_priorities_map_both_ways() {
        for (qbt, want) in [
            (0, (false, 0)),
            (1, (true, 0)),
            (6, (true, 1)),
            (7, (true, 1)),
        ] {
            assert_eq!(file_priority(qbt), want, "{qbt}");
        }
        assert_eq!(qbt_priority(1), 6);
        assert_eq!(qbt_priority(0), 1);
        assert_eq!(
            qbt_priority(-1),
            1,
            "low is normal: qBittorrent has nothing lower"
        );
        for t in [-1, 0, 1] {
            assert_eq!(file_priority(qbt_priority(t)).1, t.max(0));
        }
    }

    #[test]
    fn limits_and_modes() {
        assert_eq!(limit_k(0), (false, 0));
        assert_eq!(limit_k(100_000), (true, 100));
        assert_eq!(limit_mode(-2.0), 0);
        assert_eq!(limit_mode(1.5), 1);
        assert_eq!(limit_mode(-1.0), 2);
        assert_eq!(own_or_global(-2.0, 2.0), 2.0);
        assert_eq!(own_or_global(0.5, 2.0), 0.5);
        assert_eq!(own_or_global(-1.0, -1.0), 0.0);
    }

    #[test]
    fn peers_carry_transmissions_flags() {
        let p = PeerSummary {
            addr: "127.0.0.1:6881".parse().unwrap(),
            id: bt_meta::PeerId(*b"-TR3000-abcdefghijkl"),
            pieces: 5,
            download_rate: 100,
            upload_rate: 0,
            downloaded: 0,
            uploaded: 0,
            am_interested: true,
            am_unchoked: false,
            peer_interested: true,
            peer_unchoked: true,
            outgoing: false,
            snubbed: false,
        };
        let v = peer(&p, 10);
        assert_eq!(v["flagStr"], "DuI");
        assert_eq!(v["progress"], 0.5);
        assert_eq!(v["clientIsChoked"], false, "the peer lets us download");
        assert_eq!(v["peerIsChoked"], true, "we do not let it");
        assert_eq!(v["isDownloadingFrom"], true);
        assert_eq!(v["clientName"], "Transmission 3.0.0.0");
        assert_eq!(
            (v["address"].as_str(), v["port"].as_u64()),
            (Some("127.0.0.1"), Some(6881))
        );
    }

    #[test]
    fn eta_and_bitfield() {
        assert_eq!(eta(0, 10, true), -1);
        assert_eq!(eta(100, 0, true), -2);
        assert_eq!(eta(100, 10, true), 10);
        assert_eq!(eta(100, 10, false), -1);
        assert_eq!(pieces_bitfield(&[2, 0, 2, 0, 0, 0, 0, 0, 2]), "oIA=");
        assert_eq!(pieces_bitfield(&[]), "");
    }
}
