//! How the API's torrent fields read in a terminal: progress, rates, ETA, ratio,
//! tracker status.

use serde_json::Value;

use crate::format;

/// qBittorrent's ETA for "never": 100 days.
const ETA_INFINITE: u64 = 8_640_000;

/// A field as an unsigned integer (0 if absent or negative).
pub fn uint(t: &Value, key: &str) -> u64 {
    t[key]
        .as_u64()
        .or_else(|| t[key].as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .unwrap_or(0)
}

/// A field as a signed integer (-1 if absent, qBittorrent's "unknown").
pub fn int(t: &Value, key: &str) -> i64 {
    t[key].as_i64().unwrap_or(-1)
}

/// A field as a number (0 if absent).
pub fn float(t: &Value, key: &str) -> f64 {
    t[key].as_f64().unwrap_or(0.0)
}

/// A field as text (empty if absent).
pub fn text<'a>(t: &'a Value, key: &str) -> &'a str {
    t[key].as_str().unwrap_or("")
}

/// `0.4219` -> `42.1%`: rounded down, so only a complete torrent reads `100%`.
pub fn percent(progress: f64) -> String {
    let tenths = (progress.clamp(0.0, 1.0) * 1000.0).floor() as u64;
    if tenths % 10 == 0 {
        format!("{}%", tenths / 10)
    } else {
        format!("{}.{}%", tenths / 10, tenths % 10)
    }
}

/// Bytes per second -> `1.5 MiB/s`.
pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", format::size(bytes_per_sec))
}

/// Seconds left -> `45s`, `12m`, `3h12m`, `2d4h`; `∞` for qBittorrent's "never", `-` when
/// nothing is being fetched (complete or stopped).
pub fn eta(secs: u64, state: &str) -> String {
    if secs == 0 || state.starts_with("stopped") || state.ends_with("UP") {
        return "-".into();
    }
    if secs >= ETA_INFINITE {
        return "∞".into();
    }
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// A share ratio -> `0.25`; qBittorrent's -1 (uploaded without downloading) is `∞`.
pub fn ratio(r: f64) -> String {
    if r < 0.0 {
        "∞".into()
    } else {
        format!("{r:.2}")
    }
}

/// `torrents/trackers`' status code in words.
pub fn tracker_status(code: i64) -> &'static str {
    match code {
        0 => "disabled",
        1 => "not contacted",
        2 => "working",
        3 => "updating",
        4 => "not working",
        _ => "unknown",
    }
}

/// Seconds since the epoch as a date, or `-` for qBittorrent's "never" (-1 or 0).
pub fn date(secs: i64) -> String {
    if secs <= 0 {
        "-".into()
    } else {
        format::date(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_round_down() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.4219), "42.1%");
        assert_eq!(percent(0.9999), "99.9%");
        assert_eq!(percent(1.0), "100%");
    }

    #[test]
    fn etas() {
        assert_eq!(eta(45, "downloading"), "45s");
        assert_eq!(eta(12 * 60 + 5, "downloading"), "12m");
        assert_eq!(eta(3 * 3600 + 12 * 60, "downloading"), "3h12m");
        assert_eq!(eta(2 * 86_400 + 4 * 3600, "stalledDL"), "2d4h");
        assert_eq!(eta(ETA_INFINITE, "stalledDL"), "∞");
        assert_eq!(eta(ETA_INFINITE, "stoppedDL"), "-");
        assert_eq!(eta(0, "stalledUP"), "-");
    }

    #[test]
    fn ratios_and_fields() {
        assert_eq!(ratio(0.0), "0.00");
        assert_eq!(ratio(1.256), "1.26");
        assert_eq!(ratio(-1.0), "∞");
        let t = serde_json::json!({"size": 5, "ratio": 0.5, "completion_on": -1, "name": "n"});
        assert_eq!(uint(&t, "size"), 5);
        assert_eq!(uint(&t, "completion_on"), 0);
        assert_eq!(int(&t, "missing"), -1);
        assert_eq!(float(&t, "ratio"), 0.5);
        assert_eq!(text(&t, "name"), "n");
        assert_eq!(date(-1), "-");
    }
}
