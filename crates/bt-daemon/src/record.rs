//! What the daemon remembers of one torrent across restarts.

use bt_meta::InfoHash;
use serde::{Deserialize, Serialize};

/// One torrent as persisted in the state folder: everything the user chose about it and
/// the totals it has reached. Verified pieces are not here; they are in the engine's
/// resume file beside the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorrentRecord {
    /// The v1 info-hash, as 40 hex digits.
    #[serde(with = "hex_hash")]
    pub info_hash: InfoHash,
    /// The torrent's name (the magnet's `dn`, or the hash, until the metadata arrives).
    pub name: String,
    /// The magnet link, kept until the metadata arrives (`None` once the `.torrent` is saved).
    #[serde(default)]
    pub magnet: Option<String>,
    /// The folder the torrent's files go under.
    pub save_path: String,
    /// Its category (`""`: none).
    #[serde(default)]
    pub category: String,
    /// Its tags, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// When it was added, seconds since the Unix epoch.
    pub added_on: i64,
    /// When it completed, seconds since the Unix epoch.
    #[serde(default)]
    pub completion_on: Option<i64>,
    /// Stopped by the user (or by a share limit).
    #[serde(default)]
    pub stopped: bool,
    /// Its place in the queue, from 0.
    #[serde(default)]
    pub queue_position: u32,
    /// Payload bytes uploaded over its lifetime, up to the last save.
    #[serde(default)]
    pub uploaded: u64,
    /// Payload bytes downloaded over its lifetime, up to the last save.
    #[serde(default)]
    pub downloaded: u64,
    /// Seconds spent seeding, up to the last save.
    #[serde(default)]
    pub seeding_secs: u64,
    /// Seconds spent started, up to the last save.
    #[serde(default)]
    pub active_secs: u64,
    /// Hash the data on the next start even if its resume file matches.
    #[serde(default)]
    pub recheck: bool,
    /// Each visible file's priority, qBittorrent's numbers (empty: all normal).
    #[serde(default)]
    pub file_priorities: Vec<u8>,
    /// Fetch pieces in order.
    #[serde(default)]
    pub sequential: bool,
    /// Fetch the first and last piece of each file first.
    #[serde(default)]
    pub first_last: bool,
    /// Share ratio at which it stops seeding (-2: the global limit, -1: none).
    #[serde(default = "global_limit")]
    pub ratio_limit: f64,
    /// Minutes of seeding after which it stops (-2: global, -1: none).
    #[serde(default = "global_limit_i")]
    pub seeding_time_limit: i64,
    /// Minutes without upload while seeding after which it stops (-2: global, -1: none).
    #[serde(default = "global_limit_i")]
    pub inactive_seeding_time_limit: i64,
    /// When it last sent or received payload, seconds since the Unix epoch.
    #[serde(default)]
    pub last_activity: i64,
    /// Started regardless of the queue.
    #[serde(default)]
    pub force_start: bool,
    /// Its own download limit, bytes/s (0: none).
    #[serde(default)]
    pub dl_limit: u64,
    /// Its own upload limit, bytes/s (0: none).
    #[serde(default)]
    pub up_limit: u64,
    /// Its trackers as tiers, once the user edited them (`None`: the metainfo's).
    #[serde(default)]
    pub trackers: Option<Vec<Vec<String>>>,
    /// Its save path follows its category (qBittorrent's automatic torrent management).
    #[serde(default)]
    pub auto_tmm: bool,
    /// Take its files as complete on the next start, without hashing them.
    #[serde(default)]
    pub skip_check: bool,
    /// Files the user renamed: the file's index (as `torrents/files` counts them) and its
    /// new path under the save path, `/`-separated.
    #[serde(default)]
    pub file_renames: std::collections::BTreeMap<usize, String>,
}

fn global_limit() -> f64 {
    -2.0
}

fn global_limit_i() -> i64 {
    -2
}

impl TorrentRecord {
    /// A new, started record.
    pub fn new(info_hash: InfoHash, name: String, save_path: String, added_on: i64) -> Self {
        TorrentRecord {
            info_hash,
            name,
            magnet: None,
            save_path,
            category: String::new(),
            tags: Vec::new(),
            added_on,
            completion_on: None,
            stopped: false,
            queue_position: 0,
            uploaded: 0,
            downloaded: 0,
            seeding_secs: 0,
            active_secs: 0,
            recheck: false,
            file_priorities: Vec::new(),
            sequential: false,
            first_last: false,
            ratio_limit: -2.0,
            seeding_time_limit: -2,
            inactive_seeding_time_limit: -2,
            last_activity: added_on,
            force_start: false,
            dl_limit: 0,
            up_limit: 0,
            trackers: None,
            auto_tmm: false,
            skip_check: false,
            file_renames: Default::default(),
        }
    }
}

impl TorrentRecord {
    /// Feeds `h` every field a façade shows except the clocks that move each second while
    /// the torrent runs (`seeding_secs`, `active_secs`, `last_activity`): a list view
    /// refreshes those on its own schedule. Every field is named, so a new field must be
    /// placed on one side or the other.
    pub fn hash_shown<H: std::hash::Hasher>(&self, h: &mut H) {
        use std::hash::Hash;
        let TorrentRecord {
            info_hash,
            name,
            magnet,
            save_path,
            category,
            tags,
            added_on,
            completion_on,
            stopped,
            queue_position,
            uploaded,
            downloaded,
            seeding_secs: _,
            active_secs: _,
            recheck,
            file_priorities,
            sequential,
            first_last,
            ratio_limit,
            seeding_time_limit,
            inactive_seeding_time_limit,
            last_activity: _,
            force_start,
            dl_limit,
            up_limit,
            trackers,
            auto_tmm,
            skip_check,
            file_renames,
        } = self;
        info_hash.0.hash(h);
        name.hash(h);
        magnet.hash(h);
        save_path.hash(h);
        category.hash(h);
        tags.hash(h);
        added_on.hash(h);
        completion_on.hash(h);
        stopped.hash(h);
        queue_position.hash(h);
        uploaded.hash(h);
        downloaded.hash(h);
        recheck.hash(h);
        file_priorities.hash(h);
        sequential.hash(h);
        first_last.hash(h);
        ratio_limit.to_bits().hash(h);
        seeding_time_limit.hash(h);
        inactive_seeding_time_limit.hash(h);
        force_start.hash(h);
        dl_limit.hash(h);
        up_limit.hash(h);
        trackers.hash(h);
        auto_tmm.hash(h);
        skip_check.hash(h);
        file_renames.hash(h);
    }
}

/// An [`InfoHash`] as 40 hex digits in JSON.
mod hex_hash {
    use bt_meta::InfoHash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &InfoHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InfoHash, D::Error> {
        let s = String::deserialize(d)?;
        InfoHash::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not a 40-digit info-hash")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_old_records_get_defaults() {
        let mut r = TorrentRecord::new(InfoHash([7; 20]), "n".into(), "/s".into(), 3);
        r.tags = vec!["a".into()];
        r.magnet = Some("magnet:?xt=urn:btih:07".into());
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<TorrentRecord>(&json).unwrap(), r);
        let minimal = format!(
            r#"{{"info_hash":"{}","name":"n","save_path":"/s","added_on":3}}"#,
            "07".repeat(20)
        );
        let m: TorrentRecord = serde_json::from_str(&minimal).unwrap();
        assert!(!m.stopped && m.tags.is_empty());
        let bad = minimal.replace(&"07".repeat(20), "zz");
        let err = serde_json::from_str::<TorrentRecord>(&bad).unwrap_err();
        assert!(err.to_string().contains("info-hash"), "{err}");
    }
}
