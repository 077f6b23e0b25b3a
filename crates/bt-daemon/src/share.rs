//! Share limits: when a seeding torrent has given enough back (ratio, seeding minutes,
//! minutes without upload), as qBittorrent decides it.

use crate::record::TorrentRecord;
use crate::settings::Settings;

/// Which share limit a torrent reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// Its share ratio.
    Ratio,
    /// Its seeding time.
    SeedingTime,
    /// Its time without upload.
    InactiveTime,
}

/// qBittorrent's ratio: uploaded over downloaded, where a torrent that downloaded less
/// than 1% of what it holds (it was added complete) counts what it holds instead.
pub fn ratio(uploaded: u64, downloaded: u64, completed: u64) -> f64 {
    let base = if (downloaded as f64) < completed as f64 * 0.01 {
        completed
    } else {
        downloaded
    };
    if base == 0 {
        if uploaded == 0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        uploaded as f64 / base as f64
    }
}

/// A per-torrent limit (-2: the global one when enabled, -1 or any other negative: none).
fn effective(own: f64, enabled: bool, global: f64) -> Option<f64> {
    if own == -2.0 {
        (enabled && global >= 0.0).then_some(global)
    } else {
        (own >= 0.0).then_some(own)
    }
}

/// Whether any share limit applies to `r` under `s` (else [`reached`] is always `None`).
pub fn limited(r: &TorrentRecord, s: &Settings) -> bool {
    effective(r.ratio_limit, s.max_ratio_enabled, s.max_ratio).is_some()
        || effective(
            r.seeding_time_limit as f64,
            s.max_seeding_time_enabled,
            s.max_seeding_time as f64,
        )
        .is_some()
        || effective(
            r.inactive_seeding_time_limit as f64,
            s.max_inactive_seeding_time_enabled,
            s.max_inactive_seeding_time as f64,
        )
        .is_some()
}

/// The limit a complete torrent has reached, if any; `completed` is the bytes it holds,
/// `now` seconds since the Unix epoch.
pub fn reached(r: &TorrentRecord, s: &Settings, completed: u64, now: i64) -> Option<Reached> {
    if let Some(max) = effective(r.ratio_limit, s.max_ratio_enabled, s.max_ratio) {
        if ratio(r.uploaded, r.downloaded, completed) >= max {
            return Some(Reached::Ratio);
        }
    }
    let minutes = |v: i64| v as f64;
    if let Some(max) = effective(
        minutes(r.seeding_time_limit),
        s.max_seeding_time_enabled,
        minutes(s.max_seeding_time),
    ) {
        if r.seeding_secs as f64 >= max * 60.0 {
            return Some(Reached::SeedingTime);
        }
    }
    if let Some(max) = effective(
        minutes(r.inactive_seeding_time_limit),
        s.max_inactive_seeding_time_enabled,
        minutes(s.max_inactive_seeding_time),
    ) {
        if (now - r.last_activity) as f64 >= max * 60.0 {
            return Some(Reached::InactiveTime);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_meta::InfoHash;

    fn rec() -> TorrentRecord {
        TorrentRecord::new(InfoHash([1; 20]), "t".into(), "/".into(), 0)
    }

    #[test]
    fn ratio_counts_what_it_holds_when_it_was_added_complete() {
        assert_eq!(ratio(0, 0, 0), 0.0);
        assert_eq!(ratio(50, 0, 100), 0.5);
        assert_eq!(ratio(50, 100, 100), 0.5);
        assert_eq!(ratio(300, 200, 100), 1.5);
        assert!(ratio(1, 0, 0).is_infinite());
    }

    #[test]
    fn own_limits_win_over_global_ones_and_minus_one_means_none() {
        let mut s = Settings {
            max_ratio_enabled: true,
            max_ratio: 1.0,
            ..Settings::default()
        };
        let mut r = rec();
        r.uploaded = 150;
        r.downloaded = 100;
        assert_eq!(reached(&r, &s, 100, 0), Some(Reached::Ratio));
        r.ratio_limit = 2.0;
        assert_eq!(reached(&r, &s, 100, 0), None);
        r.ratio_limit = -1.0;
        assert_eq!(reached(&r, &s, 100, 0), None);
        r.seeding_time_limit = 1;
        r.seeding_secs = 59;
        assert_eq!(reached(&r, &s, 100, 0), None);
        r.seeding_secs = 60;
        assert_eq!(reached(&r, &s, 100, 0), Some(Reached::SeedingTime));
        r.seeding_time_limit = -2;
        s.max_inactive_seeding_time_enabled = true;
        s.max_inactive_seeding_time = 2;
        r.last_activity = 1000;
        assert_eq!(reached(&r, &s, 100, 1119), None);
        assert_eq!(reached(&r, &s, 100, 1120), Some(Reached::InactiveTime));
    }
}
