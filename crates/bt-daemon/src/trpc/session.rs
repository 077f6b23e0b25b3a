//! `session-get`, `session-set` and `session-stats`: the daemon's qBittorrent-named
//! [`Settings`] and totals under Transmission's names and units.

use serde_json::{json, Map, Value};

use super::request::{opt_bool, opt_f64, opt_i64, opt_str, RequestError};
use super::view::SPEED_K;
use crate::settings::Settings;

/// The RPC version bt answers with: Transmission 3.00's legacy protocol, whose methods
/// and field names bt follows.
pub const RPC_VERSION: i64 = 16;

/// Transmission's days bitmask (Sunday 1, Monday 2, ... Saturday 64) for qBittorrent's
/// `scheduler_days` (0 every day, 1 weekdays, 2 weekends, 3 Monday ... 9 Sunday).
pub fn days_mask(days: u32) -> i64 {
    match days {
        0 => 127,
        1 => 62,
        2 => 65,
        // Monday (3) is bit 1, ..., Saturday (8) bit 6, Sunday (9) bit 0.
        d @ 3..=8 => 1 << (d - 2),
        9 => 1,
        _ => 0,
    }
}

/// The inverse of [`days_mask`]; other masks have no qBittorrent equivalent.
pub fn scheduler_days(mask: i64) -> Option<u32> {
    match mask {
        127 => Some(0),
        62 => Some(1),
        65 => Some(2),
        1 => Some(9),
        m @ (2 | 4 | 8 | 16 | 32 | 64) => Some(m.trailing_zeros() + 2),
        _ => None,
    }
}

/// What `session-get` reports that is not a setting.
#[derive(Debug, Default)]
pub struct Facts {
    /// The port peers connect to.
    pub peer_port: u16,
    /// Free bytes where torrents are saved.
    pub free_space: u64,
    /// The façade's session id.
    pub session_id: String,
}

/// Every `session-get` key, from the settings.
pub fn get(s: &Settings, f: &Facts) -> Map<String, Value> {
    let kb = |b: u64| b / SPEED_K;
    let out = json!({
        "alt-speed-down": kb(s.alt_dl_limit),
        "alt-speed-enabled": s.use_alt_speed_limits,
        "alt-speed-time-begin": s.schedule_from_hour * 60 + s.schedule_from_min,
        "alt-speed-time-day": days_mask(s.scheduler_days),
        "alt-speed-time-enabled": s.scheduler_enabled,
        "alt-speed-time-end": s.schedule_to_hour * 60 + s.schedule_to_min,
        "alt-speed-up": kb(s.alt_up_limit),
        "blocklist-enabled": false,
        "blocklist-size": 0,
        "blocklist-url": "",
        "cache-size-mb": 0,
        "config-dir": "",
        "default-trackers": "",
        "dht-enabled": s.dht,
        "download-dir": s.save_path.to_string_lossy(),
        "download-dir-free-space": f.free_space,
        "download-queue-enabled": s.queueing_enabled,
        "download-queue-size": s.max_active_downloads,
        "encryption": "tolerated",
        "idle-seeding-limit": s.max_inactive_seeding_time.max(0),
        "idle-seeding-limit-enabled": s.max_inactive_seeding_time_enabled,
        "incomplete-dir": "",
        "incomplete-dir-enabled": false,
        "lpd-enabled": false,
        "peer-limit-global": s.max_connec,
        "peer-limit-per-torrent": s.max_connec_per_torrent,
        "peer-port": f.peer_port,
        "peer-port-random-on-start": false,
        "pex-enabled": true,
        "port-forwarding-enabled": false,
        "queue-stalled-enabled": s.dont_count_slow_torrents,
        "queue-stalled-minutes": s.slow_torrent_inactive_timer / 60,
        "rename-partial-files": false,
        "rpc-version": RPC_VERSION,
        "rpc-version-minimum": 1,
        "rpc-version-semver": "5.3.0",
        "script-torrent-added-enabled": false,
        "script-torrent-added-filename": "",
        "script-torrent-done-enabled": false,
        "script-torrent-done-filename": "",
        "script-torrent-done-seeding-enabled": false,
        "script-torrent-done-seeding-filename": "",
        "seed-queue-enabled": s.queueing_enabled,
        "seed-queue-size": s.max_active_uploads,
        "seedRatioLimit": s.max_ratio.max(0.0),
        "seedRatioLimited": s.max_ratio_enabled,
        "session-id": f.session_id,
        "speed-limit-down": kb(s.dl_limit),
        "speed-limit-down-enabled": s.dl_limit > 0,
        "speed-limit-up": kb(s.up_limit),
        "speed-limit-up-enabled": s.up_limit > 0,
        "start-added-torrents": true,
        "trash-original-torrent-files": false,
        "units": {
            "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
            "speed-bytes": SPEED_K,
            "size-units": ["kB", "MB", "GB", "TB"],
            "size-bytes": 1000,
            "memory-units": ["KiB", "MiB", "GiB", "TiB"],
            "memory-bytes": 1024,
        },
        "utp-enabled": false,
        "version": concat!("3.00 (bt ", env!("CARGO_PKG_VERSION"), ")"),
    });
    match out {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn unsupported(key: &'static str, problem: &str) -> RequestError {
    RequestError::Argument {
        key,
        problem: problem.to_string(),
    }
}

/// A limit in kB/s and whether it is on, applied to a bytes/s limit where 0 means none:
/// bt keeps no limit that is off, so a value sent while the limit stays off is dropped.
fn apply_limit(
    args: &Map<String, Value>,
    value_key: &'static str,
    enabled_key: &'static str,
    out: &mut u64,
) -> Result<(), RequestError> {
    let value = opt_i64(args, value_key)?;
    let enabled = opt_bool(args, enabled_key)?;
    match (enabled, value) {
        (Some(false), _) => *out = 0,
        (Some(true), Some(v)) => *out = v.max(0) as u64 * SPEED_K,
        (None, Some(v)) if *out > 0 => *out = v.max(0) as u64 * SPEED_K,
        _ => {}
    }
    Ok(())
}

/// Minutes of the day (0..1440) as (hour, minute).
fn hour_min(key: &'static str, minutes: i64) -> Result<(u32, u32), RequestError> {
    if !(0..1440).contains(&minutes) {
        return Err(unsupported(key, "not a minute of the day (0 to 1439)"));
    }
    Ok(((minutes / 60) as u32, (minutes % 60) as u32))
}

/// Applies `session-set` arguments to `s`. Keys bt cannot honour give an error when they
/// ask for something bt does not do; unknown keys are ignored, as Transmission does.
pub fn set(s: &mut Settings, args: &Map<String, Value>) -> Result<(), RequestError> {
    apply_limit(
        args,
        "speed-limit-down",
        "speed-limit-down-enabled",
        &mut s.dl_limit,
    )?;
    apply_limit(
        args,
        "speed-limit-up",
        "speed-limit-up-enabled",
        &mut s.up_limit,
    )?;
    if let Some(v) = opt_i64(args, "alt-speed-down")? {
        s.alt_dl_limit = v.max(0) as u64 * SPEED_K;
    }
    if let Some(v) = opt_i64(args, "alt-speed-up")? {
        s.alt_up_limit = v.max(0) as u64 * SPEED_K;
    }
    if let Some(b) = opt_bool(args, "alt-speed-enabled")? {
        s.use_alt_speed_limits = b;
    }
    if let Some(b) = opt_bool(args, "alt-speed-time-enabled")? {
        s.scheduler_enabled = b;
    }
    if let Some(m) = opt_i64(args, "alt-speed-time-begin")? {
        (s.schedule_from_hour, s.schedule_from_min) = hour_min("alt-speed-time-begin", m)?;
    }
    if let Some(m) = opt_i64(args, "alt-speed-time-end")? {
        (s.schedule_to_hour, s.schedule_to_min) = hour_min("alt-speed-time-end", m)?;
    }
    if let Some(mask) = opt_i64(args, "alt-speed-time-day")? {
        s.scheduler_days = scheduler_days(mask).ok_or_else(|| {
            unsupported(
                "alt-speed-time-day",
                "the schedule runs every day, on weekdays, on weekends or on one day",
            )
        })?;
    }
    if let Some(dir) = opt_str(args, "download-dir")? {
        if !std::path::Path::new(dir).is_absolute() {
            return Err(unsupported("download-dir", "not an absolute path"));
        }
        s.save_path = dir.into();
    }
    // One queue switch in bt (qBittorrent's) for both of Transmission's.
    for key in ["download-queue-enabled", "seed-queue-enabled"] {
        if let Some(b) = opt_bool(args, key)? {
            s.queueing_enabled = b;
        }
    }
    if let Some(n) = opt_i64(args, "download-queue-size")? {
        s.max_active_downloads = n;
    }
    if let Some(n) = opt_i64(args, "seed-queue-size")? {
        s.max_active_uploads = n;
    }
    if let Some(b) = opt_bool(args, "queue-stalled-enabled")? {
        s.dont_count_slow_torrents = b;
    }
    if let Some(m) = opt_i64(args, "queue-stalled-minutes")? {
        s.slow_torrent_inactive_timer = m.max(0) as u64 * 60;
    }
    if let Some(r) = opt_f64(args, "seedRatioLimit")? {
        s.max_ratio = r;
    }
    if let Some(b) = opt_bool(args, "seedRatioLimited")? {
        s.max_ratio_enabled = b;
    }
    if let Some(m) = opt_i64(args, "idle-seeding-limit")? {
        s.max_inactive_seeding_time = m;
    }
    if let Some(b) = opt_bool(args, "idle-seeding-limit-enabled")? {
        s.max_inactive_seeding_time_enabled = b;
    }
    if let Some(n) = opt_i64(args, "peer-limit-global")? {
        s.max_connec = n.max(1) as usize;
    }
    if let Some(n) = opt_i64(args, "peer-limit-per-torrent")? {
        s.max_connec_per_torrent = n.max(1) as usize;
    }
    if let Some(b) = opt_bool(args, "dht-enabled")? {
        s.dht = b;
    }
    if let Some(p) = opt_i64(args, "peer-port")? {
        let port = u16::try_from(p).map_err(|_| unsupported("peer-port", "not a port"))?;
        s.listen.set_port(port);
    }
    // Things bt does not do: asking for them is an error, asking them off is fine.
    for (key, off) in [
        ("blocklist-enabled", "bt has no blocklist"),
        ("incomplete-dir-enabled", "bt has no incomplete folder"),
        ("lpd-enabled", "bt has no local peer discovery"),
        ("utp-enabled", "bt speaks TCP only"),
        ("port-forwarding-enabled", "bt does no port forwarding"),
        ("rename-partial-files", "bt does not rename partial files"),
        ("script-torrent-done-enabled", "bt runs no scripts"),
        (
            "trash-original-torrent-files",
            "bt does not delete added .torrent files",
        ),
    ] {
        if opt_bool(args, key)? == Some(true) {
            return Err(unsupported(key, off));
        }
    }
    if opt_bool(args, "pex-enabled")? == Some(false) {
        return Err(unsupported("pex-enabled", "bt always exchanges peers"));
    }
    if opt_bool(args, "start-added-torrents")? == Some(false) {
        return Err(unsupported(
            "start-added-torrents",
            "bt starts added torrents; add with paused instead",
        ));
    }
    if let Some(e) = opt_str(args, "encryption")? {
        if e != "tolerated" && e != "preferred" {
            return Err(unsupported(
                "encryption",
                "bt accepts encrypted and plaintext peers; `bt daemon` has no setting to require encryption",
            ));
        }
    }
    Ok(())
}

/// The totals `session-stats` reports for one period.
#[derive(Debug, Default, Clone, Copy)]
pub struct Period {
    /// Payload uploaded.
    pub uploaded: u64,
    /// Payload downloaded.
    pub downloaded: u64,
    /// Torrents added.
    pub files_added: u64,
    /// Seconds the daemon ran.
    pub seconds: u64,
}

impl Period {
    fn json(&self) -> Value {
        json!({
            "uploadedBytes": self.uploaded,
            "downloadedBytes": self.downloaded,
            "filesAdded": self.files_added,
            "sessionCount": 1,
            "secondsActive": self.seconds,
        })
    }
}

/// The `session-stats` answer.
pub fn stats(
    totals: &crate::Totals,
    torrents: usize,
    active: usize,
    stopped: usize,
    cumulative: Period,
    current: Period,
) -> Value {
    json!({
        "activeTorrentCount": active,
        "pausedTorrentCount": stopped,
        "torrentCount": torrents,
        "downloadSpeed": totals.download_rate,
        "uploadSpeed": totals.upload_rate,
        "cumulative-stats": cumulative.json(),
        "current-stats": current.json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_json(s: &mut Settings, v: Value) -> Result<(), RequestError> {
        set(s, v.as_object().unwrap())
    }

    #[test]
    fn days_round_trip() {
        for d in 0..=9 {
            assert_eq!(scheduler_days(days_mask(d)), Some(d), "{d}");
        }
        assert_eq!(days_mask(3), 2, "Monday");
        assert_eq!(days_mask(9), 1, "Sunday");
        assert_eq!(scheduler_days(3), None);
    }

    #[test]
    fn limits_are_kilobytes_and_off_is_zero() {
        let mut s = Settings::default();
        set_json(
            &mut s,
            json!({"speed-limit-down": 100, "speed-limit-down-enabled": true}),
        )
        .unwrap();
        assert_eq!(s.dl_limit, 100_000);
        set_json(&mut s, json!({"speed-limit-down": 50})).unwrap();
        assert_eq!(s.dl_limit, 50_000, "a new value for a limit that is on");
        set_json(&mut s, json!({"speed-limit-up": 50})).unwrap();
        assert_eq!(s.up_limit, 0, "a value for a limit that is off is dropped");
        set_json(&mut s, json!({"speed-limit-down-enabled": false})).unwrap();
        assert_eq!(s.dl_limit, 0);
        set_json(
            &mut s,
            json!({"alt-speed-down": 7, "alt-speed-up": 8, "alt-speed-enabled": true}),
        )
        .unwrap();
        assert_eq!((s.alt_dl_limit, s.alt_up_limit), (7000, 8000));
        assert!(s.use_alt_speed_limits);
        let got = get(&s, &Facts::default());
        assert_eq!(got["alt-speed-down"], 7);
        assert_eq!(got["speed-limit-down-enabled"], false);
        assert_eq!(got["alt-speed-enabled"], true);
    }

    #[test]
    fn queue_share_and_folder_keys_map_to_qbittorrent_names() {
        let mut s = Settings::default();
        set_json(
            &mut s,
            json!({
                "download-queue-enabled": true, "download-queue-size": 2, "seed-queue-size": 4,
                "seedRatioLimit": 1.5, "seedRatioLimited": true,
                "idle-seeding-limit": 30, "idle-seeding-limit-enabled": true,
                "download-dir": "/srv/t", "alt-speed-time-begin": 90, "alt-speed-time-day": 65,
            }),
        )
        .unwrap();
        assert!(s.queueing_enabled);
        assert_eq!((s.max_active_downloads, s.max_active_uploads), (2, 4));
        assert_eq!((s.max_ratio, s.max_ratio_enabled), (1.5, true));
        assert_eq!(
            (
                s.max_inactive_seeding_time,
                s.max_inactive_seeding_time_enabled
            ),
            (30, true)
        );
        assert_eq!(s.save_path, std::path::PathBuf::from("/srv/t"));
        assert_eq!((s.schedule_from_hour, s.schedule_from_min), (1, 30));
        assert_eq!(s.scheduler_days, 2);
    }

    #[test]
    fn what_bt_cannot_do_is_an_error() {
        let mut s = Settings::default();
        for bad in [
            json!({"blocklist-enabled": true}),
            json!({"encryption": "required"}),
            json!({"alt-speed-time-day": 3}),
            json!({"download-dir": "relative"}),
            json!({"speed-limit-down": "fast"}),
            json!({"alt-speed-time-end": 2000}),
        ] {
            assert!(set_json(&mut s, bad.clone()).is_err(), "{bad}");
        }
        set_json(
            &mut s,
            json!({"blocklist-enabled": false, "no-such-key": 1}),
        )
        .unwrap();
    }
}
