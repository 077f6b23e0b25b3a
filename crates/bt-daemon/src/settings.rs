//! The daemon's settings file, `settings.json` in the state folder.
//!
//! Every key is optional; a missing key takes its default. Keys that qBittorrent also has
//! use qBittorrent's preference names, so `app/preferences` and `app/setPreferences` read
//! and write them under the same names.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `save_path` | `~/Downloads` | where torrents go without a save path or a category path |
//! | `listen` | `0.0.0.0:6881` | the address peers connect to (TCP) and the DHT uses (UDP) |
//! | `api` | `127.0.0.1:8080` | the Web API's address |
//! | `dht` | `true` | run the DHT |
//! | `dht_bootstrap` | the public routers | DHT nodes to start from, `HOST:PORT` |
//! | `max_connec` | `500` | connected peers over all torrents |
//! | `max_connec_per_torrent` | `100` | connected peers per torrent |
//! | `queueing_enabled` | `false` | limit how many torrents run at once (qBittorrent: on) |
//! | `max_active_downloads` | `3` | downloading torrents at once (-1: no limit) |
//! | `max_active_uploads` | `3` | seeding torrents at once (-1: no limit) |
//! | `max_active_torrents` | `5` | torrents at once (-1: no limit) |
//! | `dont_count_slow_torrents` | `false` | slow torrents take no queue slot |
//! | `slow_torrent_dl_rate_threshold` | `2` | KiB/s below which a download is slow |
//! | `slow_torrent_ul_rate_threshold` | `2` | KiB/s below which a seed is slow |
//! | `slow_torrent_inactive_timer` | `60` | seconds below the threshold before it counts as slow |
//! | `max_ratio_enabled`, `max_ratio` | `false`, `-1` | share ratio at which seeding stops |
//! | `max_seeding_time_enabled`, `max_seeding_time` | `false`, `-1` | minutes of seeding after which it stops |
//! | `max_inactive_seeding_time_enabled`, `max_inactive_seeding_time` | `false`, `-1` | minutes without upload after which seeding stops |
//! | `max_ratio_act` | `0` | on reaching a share limit: 0 stop, 1 remove, 3 remove with its files |
//! | `scan_dir` | none | the watch folder: `.torrent` and `.magnet` files dropped there are added |
//! | `dl_limit`, `up_limit` | `0` | global download and upload limits, bytes/s (0: none) |
//! | `alt_dl_limit`, `alt_up_limit` | `10240` | the alternative limits, bytes/s (0: none) |
//! | `use_alt_speed_limits` | `false` | the alternative limits are in force |
//! | `scheduler_enabled` | `false` | switch to the alternative limits on a schedule (local time) |
//! | `schedule_from_hour`, `schedule_from_min`, `schedule_to_hour`, `schedule_to_min` | `8:00`, `20:00` | the window |
//! | `scheduler_days` | `0` | 0 every day, 1 weekdays, 2 weekends, 3 Monday ... 9 Sunday |
//! | `web_ui_username` | `admin` | the API's user name |
//! | `web_ui_password_pbkdf2` | none | the API's password, hashed (see `credentials`); set it through `app/setPreferences` `web_ui_password` |
//! | `bypass_local_auth` | `false` | clients on loopback need no login even with a password set |
//! | `web_ui_max_auth_fail_count` | `5` | failed logins from one address before it is banned |
//! | `web_ui_ban_duration` | `3600` | seconds an address stays banned |
//! | `web_ui_session_timeout` | `3600` | seconds a login lasts without use |
//! | `web_ui_domain_list` | `""` | host names the API answers to besides this machine's addresses and `localhost` (`;`-separated, `*` a wildcard): a request naming any other host is refused (DNS rebinding) |
//! | `use_https` | `false` | serve the API over TLS, with `web_ui_https_cert_path` and `web_ui_https_key_path` (PEM) |
//! | `web_ui_https_cert_path`, `web_ui_https_key_path` | none | the TLS certificate chain and private key, PEM files |
//! | `web_ui_max_connections` | `256` | API connections open at once; more are closed at once |
//! | `torrent_file_size_limit` | `33554432` | largest request body, bytes (a `.torrent` upload) |
//! | `banned_IPs` | `""` | addresses no peer connection is accepted from or made to, one per line |
//!
//! Without a password the API lets in every client, so it listens on loopback only: the
//! daemon refuses any other `api` address until a password is set.
//!
//! The queue is off by default, unlike qBittorrent's: a daemon seeding thousands of
//! torrents should seed them all.
//!
//! `listen`, `api`, `dht`, `dht_bootstrap`, `use_https`, the TLS files and
//! `web_ui_max_connections` take effect at the next start; the others at
//! once. Command-line flags override the file for one run without writing it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::write_atomic;

/// The settings a daemon runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where torrents go by default.
    pub save_path: PathBuf,
    /// Peer (TCP) and DHT (UDP) address.
    pub listen: SocketAddr,
    /// Web API address.
    pub api: SocketAddr,
    /// Run the DHT.
    pub dht: bool,
    /// DHT bootstrap nodes (`None`: the public routers).
    pub dht_bootstrap: Option<Vec<String>>,
    /// Connected peers over all torrents.
    pub max_connec: usize,
    /// Connected peers per torrent.
    pub max_connec_per_torrent: usize,
    /// Limit how many torrents run at once.
    pub queueing_enabled: bool,
    /// Downloading torrents at once (negative: no limit).
    pub max_active_downloads: i64,
    /// Seeding torrents at once (negative: no limit).
    pub max_active_uploads: i64,
    /// Torrents at once (negative: no limit).
    pub max_active_torrents: i64,
    /// Slow torrents take no queue slot.
    pub dont_count_slow_torrents: bool,
    /// KiB/s below which a download is slow.
    pub slow_torrent_dl_rate_threshold: u64,
    /// KiB/s below which a seed is slow.
    pub slow_torrent_ul_rate_threshold: u64,
    /// Seconds below the threshold before a torrent counts as slow.
    pub slow_torrent_inactive_timer: u64,
    /// Apply [`Settings::max_ratio`].
    pub max_ratio_enabled: bool,
    /// Share ratio at which seeding stops.
    pub max_ratio: f64,
    /// Apply [`Settings::max_seeding_time`].
    pub max_seeding_time_enabled: bool,
    /// Minutes of seeding after which it stops.
    pub max_seeding_time: i64,
    /// Apply [`Settings::max_inactive_seeding_time`].
    pub max_inactive_seeding_time_enabled: bool,
    /// Minutes without upload after which seeding stops.
    pub max_inactive_seeding_time: i64,
    /// On reaching a share limit: 0 stop, 1 remove, 3 remove with its files.
    pub max_ratio_act: u8,
    /// The watch folder.
    pub scan_dir: Option<PathBuf>,
    /// Global download limit, bytes/s (0: none).
    pub dl_limit: u64,
    /// Global upload limit, bytes/s (0: none).
    pub up_limit: u64,
    /// Alternative download limit, bytes/s (0: none).
    pub alt_dl_limit: u64,
    /// Alternative upload limit, bytes/s (0: none).
    pub alt_up_limit: u64,
    /// The alternative limits are in force.
    pub use_alt_speed_limits: bool,
    /// Switch to the alternative limits on a schedule.
    pub scheduler_enabled: bool,
    /// Start of the window, hour.
    pub schedule_from_hour: u32,
    /// Start of the window, minute.
    pub schedule_from_min: u32,
    /// End of the window, hour.
    pub schedule_to_hour: u32,
    /// End of the window, minute.
    pub schedule_to_min: u32,
    /// Days of the schedule: 0 every day, 1 weekdays, 2 weekends, 3 Monday ... 9 Sunday.
    pub scheduler_days: u32,
    /// The API's user name.
    pub web_ui_username: String,
    /// The API's password, hashed (`None`: no password).
    pub web_ui_password_pbkdf2: Option<String>,
    /// Loopback clients need no login even with a password set.
    pub bypass_local_auth: bool,
    /// Failed logins from one address before it is banned.
    pub web_ui_max_auth_fail_count: u32,
    /// Seconds an address stays banned.
    pub web_ui_ban_duration: u64,
    /// Peer addresses refused, one per line (qBittorrent's `banned_IPs`).
    #[serde(rename = "banned_IPs")]
    pub banned_ips: String,
    /// Seconds a login lasts without use.
    pub web_ui_session_timeout: u64,
    /// Host names the API answers to besides this machine's addresses and `localhost`,
    /// `;`-separated, `*` a wildcard (qBittorrent's `web_ui_domain_list`).
    pub web_ui_domain_list: String,
    /// Serve the API over TLS.
    pub use_https: bool,
    /// The TLS certificate chain, PEM.
    pub web_ui_https_cert_path: Option<PathBuf>,
    /// The TLS private key, PEM.
    pub web_ui_https_key_path: Option<PathBuf>,
    /// API connections open at once.
    pub web_ui_max_connections: usize,
    /// Largest request body, bytes: a `.torrent` upload and its form fields.
    pub torrent_file_size_limit: u64,
}

impl Settings {
    /// The peer addresses refused (the lines of `banned_IPs` that are addresses).
    pub fn banned_peer_ips(&self) -> Vec<std::net::IpAddr> {
        self.banned_ips
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Default for Settings {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        Settings {
            save_path: home.join("Downloads"),
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            api: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dht: true,
            dht_bootstrap: None,
            max_connec: 500,
            max_connec_per_torrent: 100,
            queueing_enabled: false,
            max_active_downloads: 3,
            max_active_uploads: 3,
            max_active_torrents: 5,
            dont_count_slow_torrents: false,
            slow_torrent_dl_rate_threshold: 2,
            slow_torrent_ul_rate_threshold: 2,
            slow_torrent_inactive_timer: 60,
            max_ratio_enabled: false,
            max_ratio: -1.0,
            max_seeding_time_enabled: false,
            max_seeding_time: -1,
            max_inactive_seeding_time_enabled: false,
            max_inactive_seeding_time: -1,
            max_ratio_act: 0,
            scan_dir: None,
            dl_limit: 0,
            up_limit: 0,
            alt_dl_limit: 10 * 1024,
            alt_up_limit: 10 * 1024,
            use_alt_speed_limits: false,
            scheduler_enabled: false,
            schedule_from_hour: 8,
            schedule_from_min: 0,
            schedule_to_hour: 20,
            schedule_to_min: 0,
            scheduler_days: 0,
            web_ui_username: "admin".into(),
            web_ui_password_pbkdf2: None,
            bypass_local_auth: false,
            web_ui_max_auth_fail_count: 5,
            web_ui_ban_duration: 3600,
            banned_ips: String::new(),
            web_ui_session_timeout: 3600,
            web_ui_domain_list: String::new(),
            use_https: false,
            web_ui_https_cert_path: None,
            web_ui_https_key_path: None,
            web_ui_max_connections: 256,
            torrent_file_size_limit: crate::qbt::MAX_BODY as u64,
        }
    }
}

/// Why the settings file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// It could not be read or written.
    #[error("settings file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// It is not valid settings JSON.
    #[error("settings file {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        reason: String,
    },
}

impl Settings {
    /// Reads the settings file; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SettingsError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(SettingsError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes the settings file atomically.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        write_atomic(path, &json).map_err(|source| SettingsError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_defaults_and_bad_files_name_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        std::fs::write(&path, br#"{"max_connec": 7}"#).unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!(s.max_connec, 7);
        assert_eq!(s.api, Settings::default().api);
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        std::fs::write(&path, b"{\n\"dht\": 3}").unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
