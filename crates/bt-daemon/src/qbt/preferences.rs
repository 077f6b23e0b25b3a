//! `app/preferences` and `app/setPreferences`: the settings under qBittorrent's names.

use std::net::SocketAddr;

use serde_json::{json, Map, Value};

use crate::settings::Settings;

/// The preferences object `app/preferences` answers for `st` and an API at `api`.
pub fn view(st: &Settings, api: SocketAddr) -> Value {
    json!({
        "save_path": st.save_path.to_string_lossy(),
        "temp_path_enabled": false,
        "listen_port": st.listen.port(),
        "dht": st.dht,
        "pex": true,
        "lsd": false,
        "max_connec": st.max_connec,
        "max_connec_per_torrent": st.max_connec_per_torrent,
        "web_ui_address": api.ip().to_string(),
        "web_ui_port": api.port(),
        "bypass_local_auth": st.bypass_local_auth,
        "web_ui_username": st.web_ui_username,
        "web_ui_max_auth_fail_count": st.web_ui_max_auth_fail_count,
        "web_ui_ban_duration": st.web_ui_ban_duration,
        "web_ui_session_timeout": st.web_ui_session_timeout,
        "web_ui_domain_list": st.web_ui_domain_list,
        "web_ui_host_header_validation_enabled": true,
        "web_ui_csrf_protection_enabled": true,
        "web_ui_secure_cookie_enabled": st.use_https,
        "use_https": st.use_https,
        "web_ui_https_cert_path": st.web_ui_https_cert_path.as_ref().map(|p| p.to_string_lossy()).unwrap_or_default(),
        "web_ui_https_key_path": st.web_ui_https_key_path.as_ref().map(|p| p.to_string_lossy()).unwrap_or_default(),
        "web_ui_max_connections": st.web_ui_max_connections,
        "torrent_file_size_limit": st.torrent_file_size_limit,
        "queueing_enabled": st.queueing_enabled,
        "max_active_downloads": st.max_active_downloads,
        "max_active_uploads": st.max_active_uploads,
        "max_active_torrents": st.max_active_torrents,
        "dont_count_slow_torrents": st.dont_count_slow_torrents,
        "slow_torrent_dl_rate_threshold": st.slow_torrent_dl_rate_threshold,
        "slow_torrent_ul_rate_threshold": st.slow_torrent_ul_rate_threshold,
        "slow_torrent_inactive_timer": st.slow_torrent_inactive_timer,
        "max_ratio_enabled": st.max_ratio_enabled,
        "max_ratio": st.max_ratio,
        "max_seeding_time_enabled": st.max_seeding_time_enabled,
        "max_seeding_time": st.max_seeding_time,
        "max_inactive_seeding_time_enabled": st.max_inactive_seeding_time_enabled,
        "max_inactive_seeding_time": st.max_inactive_seeding_time,
        "max_ratio_act": st.max_ratio_act,
        "scan_dirs": st.scan_dir.as_ref().map_or_else(|| json!({}), |d| json!({d.to_string_lossy(): 1})),
        "dl_limit": st.dl_limit,
        "up_limit": st.up_limit,
        "alt_dl_limit": st.alt_dl_limit,
        "alt_up_limit": st.alt_up_limit,
        "scheduler_enabled": st.scheduler_enabled,
        "schedule_from_hour": st.schedule_from_hour,
        "schedule_from_min": st.schedule_from_min,
        "schedule_to_hour": st.schedule_to_hour,
        "schedule_to_min": st.schedule_to_min,
        "scheduler_days": st.scheduler_days,
        "encryption": 0,
        "banned_IPs": st.banned_ips,
        "ip_filter_enabled": !st.banned_ips.trim().is_empty(),
        "auto_tmm_enabled": false,
        "create_subfolder_enabled": true,
        "start_paused_enabled": false,
    })
}

/// Applies the preferences a client sent to `st`: unknown keys and values of the wrong
/// type are ignored, as qBittorrent ignores them; a value that is refused is the error.
pub fn apply(st: &mut Settings, prefs: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in prefs {
        match (k.as_str(), v) {
            ("save_path", Value::String(p)) => st.save_path = p.into(),
            ("listen_port", v) => {
                if let Some(port) = v.as_u64().and_then(|p| u16::try_from(p).ok()) {
                    st.listen.set_port(port);
                }
            }
            ("dht", Value::Bool(b)) => st.dht = *b,
            ("max_connec", v) => {
                if let Some(n) = v.as_u64() {
                    st.max_connec = n as usize;
                }
            }
            ("max_connec_per_torrent", v) => {
                if let Some(n) = v.as_u64() {
                    st.max_connec_per_torrent = n as usize;
                }
            }
            ("queueing_enabled", Value::Bool(b)) => st.queueing_enabled = *b,
            ("dl_limit", v) => set_limit(v, &mut st.dl_limit),
            ("up_limit", v) => set_limit(v, &mut st.up_limit),
            ("alt_dl_limit", v) => set_limit(v, &mut st.alt_dl_limit),
            ("alt_up_limit", v) => set_limit(v, &mut st.alt_up_limit),
            ("scheduler_enabled", Value::Bool(b)) => st.scheduler_enabled = *b,
            ("schedule_from_hour", v) => set_u32(v, &mut st.schedule_from_hour, 23),
            ("schedule_from_min", v) => set_u32(v, &mut st.schedule_from_min, 59),
            ("schedule_to_hour", v) => set_u32(v, &mut st.schedule_to_hour, 23),
            ("schedule_to_min", v) => set_u32(v, &mut st.schedule_to_min, 59),
            ("scheduler_days", v) => set_u32(v, &mut st.scheduler_days, 9),
            ("web_ui_username", Value::String(u)) if !u.is_empty() => {
                st.web_ui_username = u.clone()
            }
            ("web_ui_password", Value::String(pw)) => {
                // qBittorrent refuses passwords shorter than 6 characters.
                if pw.chars().count() < 6 {
                    return Err("web_ui_password: at least 6 characters".into());
                }
                st.web_ui_password_pbkdf2 = Some(crate::credentials::hash_password(pw));
            }
            ("bypass_local_auth", Value::Bool(b)) => st.bypass_local_auth = *b,
            ("web_ui_max_auth_fail_count", v) => {
                if let Some(n) = v.as_u64() {
                    st.web_ui_max_auth_fail_count = n as u32;
                }
            }
            ("web_ui_ban_duration", v) => set_u64(v, &mut st.web_ui_ban_duration),
            ("banned_IPs", Value::String(list)) => {
                let bad: Vec<&str> = list
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && l.parse::<std::net::IpAddr>().is_err())
                    .collect();
                if !bad.is_empty() {
                    return Err(format!("banned_IPs: not IP addresses: {}", bad.join(", ")));
                }
                st.banned_ips = list.clone();
            }
            ("web_ui_session_timeout", v) => set_u64(v, &mut st.web_ui_session_timeout),
            ("web_ui_domain_list", Value::String(list)) => st.web_ui_domain_list = list.clone(),
            ("use_https", Value::Bool(b)) => st.use_https = *b,
            ("web_ui_https_cert_path", Value::String(p)) => {
                st.web_ui_https_cert_path = (!p.is_empty()).then(|| p.into())
            }
            ("web_ui_https_key_path", Value::String(p)) => {
                st.web_ui_https_key_path = (!p.is_empty()).then(|| p.into())
            }
            ("web_ui_max_connections", v) => {
                if let Some(n) = v.as_u64().filter(|n| *n > 0) {
                    st.web_ui_max_connections = n as usize;
                }
            }
            ("torrent_file_size_limit", v) => {
                if let Some(n) = v.as_u64().filter(|n| *n >= 1024) {
                    st.torrent_file_size_limit = n;
                }
            }
            ("max_active_downloads", v) => set_i64(v, &mut st.max_active_downloads),
            ("max_active_uploads", v) => set_i64(v, &mut st.max_active_uploads),
            ("max_active_torrents", v) => set_i64(v, &mut st.max_active_torrents),
            ("dont_count_slow_torrents", Value::Bool(b)) => st.dont_count_slow_torrents = *b,
            ("slow_torrent_dl_rate_threshold", v) => {
                set_u64(v, &mut st.slow_torrent_dl_rate_threshold)
            }
            ("slow_torrent_ul_rate_threshold", v) => {
                set_u64(v, &mut st.slow_torrent_ul_rate_threshold)
            }
            ("slow_torrent_inactive_timer", v) => set_u64(v, &mut st.slow_torrent_inactive_timer),
            ("max_ratio_enabled", Value::Bool(b)) => st.max_ratio_enabled = *b,
            ("max_ratio", v) => {
                if let Some(r) = v.as_f64() {
                    st.max_ratio = r;
                }
            }
            ("max_seeding_time_enabled", Value::Bool(b)) => st.max_seeding_time_enabled = *b,
            ("max_seeding_time", v) => set_i64(v, &mut st.max_seeding_time),
            ("max_inactive_seeding_time_enabled", Value::Bool(b)) => {
                st.max_inactive_seeding_time_enabled = *b
            }
            ("max_inactive_seeding_time", v) => set_i64(v, &mut st.max_inactive_seeding_time),
            ("max_ratio_act", v) => {
                if let Some(a) = v.as_u64().filter(|a| matches!(a, 0 | 1 | 3)) {
                    st.max_ratio_act = a as u8;
                }
            }
            ("scan_dirs", Value::Object(dirs)) => {
                st.scan_dir = dirs.keys().next().map(std::path::PathBuf::from);
            }
            // Unknown preferences are ignored, as qBittorrent ignores them.
            _ => {}
        }
    }
    Ok(())
}

fn set_i64(v: &Value, out: &mut i64) {
    if let Some(n) = v.as_i64() {
        *out = n;
    }
}

/// A limit preference: bytes/s, 0 or negative for none.
fn set_limit(v: &Value, out: &mut u64) {
    if let Some(n) = v.as_i64() {
        *out = n.max(0) as u64;
    }
}

fn set_u32(v: &Value, out: &mut u32, max: u32) {
    if let Some(n) = v.as_u64().filter(|n| *n <= u64::from(max)) {
        *out = n as u32;
    }
}

fn set_u64(v: &Value, out: &mut u64) {
    if let Some(n) = v.as_u64() {
        *out = n;
    }
}
