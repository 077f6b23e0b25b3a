//! Results: per-run figures, medians, bt's ratios to the other clients, the table on
//! stdout and the JSON file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use super::clients::{Client, Pair, Sample};
use crate::payload::MIB;

/// One round of one pair.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// Round number, from 1.
    pub round: usize,
    /// 1-minute load average when it started (the machine is shared).
    pub loadavg: f64,
    /// The figures, if it succeeded.
    #[serde(flatten)]
    pub sample: Option<Sample>,
    /// Payload MiB per wall second, if it succeeded.
    pub mib_per_s: Option<f64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Medians over a pair's successful runs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Medians {
    /// Successful runs the medians are over.
    pub runs: usize,
    /// Wall seconds.
    pub wall_secs: f64,
    /// Payload MiB per median wall second.
    pub mib_per_s: f64,
    /// Leecher CPU seconds.
    pub cpu_secs: f64,
    /// Leecher peak RSS in MiB.
    pub peak_rss_mib: f64,
    /// Seeder CPU seconds.
    pub seeder_cpu_secs: f64,
}

/// How a bt pair compares with the others of the same payload.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The pair whose speed it is compared with.
    pub speed_vs: String,
    /// bt's MiB/s over theirs (above 1: bt is faster).
    pub speed_ratio: f64,
    /// The pair whose CPU time it is compared with.
    pub cpu_vs: String,
    /// bt's CPU seconds over theirs (above 1: bt uses more), of the leecher for a bt
    /// leecher, of the seeder for a bt seeder.
    pub cpu_ratio: f64,
}

/// All runs of one pair.
#[derive(Clone, Debug, Serialize)]
pub struct PairReport {
    /// `seeder->leecher`.
    pub name: String,
    /// Who seeded.
    pub seeder: Client,
    /// Who downloaded.
    pub leecher: Client,
    /// Every round, in order.
    pub runs: Vec<Run>,
    /// Medians of the successful runs.
    pub medians: Option<Medians>,
    /// For pairs with bt: the ratio to the best other client.
    pub comparison: Option<Comparison>,
}

impl PairReport {
    /// An empty report for `pair`.
    pub fn new(pair: Pair) -> Self {
        PairReport {
            name: pair.name(),
            seeder: pair.seeder,
            leecher: pair.leecher,
            runs: Vec::new(),
            medians: None,
            comparison: None,
        }
    }
}

/// A pair that did not run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// `seeder->leecher`.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Everything about one payload.
#[derive(Clone, Debug, Serialize)]
pub struct PayloadReport {
    /// `large` or `small`.
    pub label: String,
    /// Payload bytes.
    pub len: u64,
    /// Piece length in bytes.
    pub piece_len: u64,
    /// Number of pieces.
    pub pieces: u64,
    /// Pairs that ran.
    pub pairs: Vec<PairReport>,
    /// Pairs that did not.
    pub skipped: Vec<Skipped>,
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

impl PayloadReport {
    /// Fills in every pair's medians and bt's comparisons.
    pub fn finish(&mut self) {
        let len = self.len;
        for pair in &mut self.pairs {
            pair.medians = medians(len, &pair.runs);
        }
        let comparisons: Vec<Option<Comparison>> =
            self.pairs.iter().map(|p| self.compare(p)).collect();
        for (pair, comparison) in self.pairs.iter_mut().zip(comparisons) {
            pair.comparison = comparison;
        }
    }

    /// bt as a leecher against the fastest and the thriftiest other leecher of the same
    /// seeder; bt as a seeder against the libtorrent seeder serving the same leecher.
    fn compare(&self, pair: &PairReport) -> Option<Comparison> {
        let ours = pair.medians?;
        let measured = |p: &&PairReport| p.medians.is_some();
        if pair.leecher == Client::Bt && pair.seeder != Client::Bt {
            let others: Vec<&PairReport> = self
                .pairs
                .iter()
                .filter(|p| p.seeder == pair.seeder && p.leecher != Client::Bt)
                .filter(measured)
                .collect();
            let get = |p: &PairReport| p.medians.expect("filtered on medians");
            let fastest = others
                .iter()
                .max_by(|a, b| get(a).mib_per_s.total_cmp(&get(b).mib_per_s))?;
            let thriftiest = others
                .iter()
                .min_by(|a, b| get(a).cpu_secs.total_cmp(&get(b).cpu_secs))?;
            return Some(Comparison {
                speed_vs: fastest.name.clone(),
                speed_ratio: ours.mib_per_s / get(fastest).mib_per_s,
                cpu_vs: thriftiest.name.clone(),
                cpu_ratio: ours.cpu_secs / get(thriftiest).cpu_secs,
            });
        }
        if pair.seeder == Client::Bt {
            let reference = self
                .pairs
                .iter()
                .filter(|p| p.seeder == Client::Libtorrent && p.leecher == pair.leecher)
                .find(measured)?;
            let theirs = reference.medians?;
            return Some(Comparison {
                speed_vs: reference.name.clone(),
                speed_ratio: ours.mib_per_s / theirs.mib_per_s,
                cpu_vs: reference.name.clone(),
                cpu_ratio: ours.seeder_cpu_secs / theirs.seeder_cpu_secs,
            });
        }
        None
    }

    /// The table for this payload.
    pub fn table(&self, rounds: usize) -> String {
        let mut out = String::new();
        let mib = self.len as f64 / MIB as f64;
        let _ = writeln!(
            out,
            "\n{}: {} MiB in {} pieces of {} KiB; medians over {rounds} round(s)",
            self.label,
            fmt_num(mib, if mib.fract() == 0.0 { 0 } else { 1 }),
            self.pieces,
            self.piece_len / 1024
        );
        let _ = writeln!(
            out,
            "{:<26} {:>4} {:>8} {:>8} {:>7} {:>8} {:>8}  bt vs others",
            "seeder->leecher", "ok", "wall s", "MiB/s", "CPU s", "RSS MiB", "seed CPU"
        );
        for pair in &self.pairs {
            let ok = pair.runs.iter().filter(|r| r.sample.is_some()).count();
            let cells = match pair.medians {
                Some(m) => format!(
                    "{:>8} {:>8} {:>7} {:>8} {:>8}",
                    fmt_num(m.wall_secs, 2),
                    fmt_num(m.mib_per_s, 1),
                    fmt_num(m.cpu_secs, 2),
                    fmt_num(m.peak_rss_mib, 1),
                    fmt_num(m.seeder_cpu_secs, 2)
                ),
                None => format!("{:>8} {:>8} {:>7} {:>8} {:>8}", "-", "-", "-", "-", "-"),
            };
            let comparison = match &pair.comparison {
                Some(c) if pair.seeder == Client::Bt => format!(
                    "speed {}x {}, seeder CPU {}x",
                    fmt_num(c.speed_ratio, 2),
                    c.speed_vs,
                    fmt_num(c.cpu_ratio, 2)
                ),
                Some(c) => format!(
                    "speed {}x {}, CPU {}x {}",
                    fmt_num(c.speed_ratio, 2),
                    c.speed_vs,
                    fmt_num(c.cpu_ratio, 2),
                    c.cpu_vs
                ),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{:<26} {:>4} {cells}  {comparison}",
                pair.name,
                format!("{ok}/{}", pair.runs.len())
            );
            if let Some(error) = pair.runs.iter().find_map(|r| r.error.as_deref()) {
                let first = error.lines().next().unwrap_or("");
                let _ = writeln!(out, "{:<26}   first failure: {first}", "");
            }
        }
        for skipped in &self.skipped {
            let _ = writeln!(out, "{:<26} skipped: {}", skipped.name, skipped.reason);
        }
        out
    }
}

/// Medians of the successful `runs` of a `len`-byte payload.
fn medians(len: u64, runs: &[Run]) -> Option<Medians> {
    let samples: Vec<&Sample> = runs.iter().filter_map(|r| r.sample.as_ref()).collect();
    let of = |f: fn(&Sample) -> f64| median(&samples.iter().map(|s| f(s)).collect::<Vec<_>>());
    let wall_secs = of(|s| s.wall_secs)?;
    Some(Medians {
        runs: samples.len(),
        wall_secs,
        mib_per_s: mib_per_s(len, wall_secs),
        cpu_secs: of(|s| s.cpu_secs)?,
        peak_rss_mib: of(|s| s.peak_rss_bytes as f64 / MIB as f64)?,
        seeder_cpu_secs: of(|s| s.seeder_cpu_secs)?,
    })
}

/// Payload MiB per second.
pub fn mib_per_s(len: u64, secs: f64) -> f64 {
    len as f64 / MIB as f64 / secs.max(1e-9)
}

/// `value` with `decimals` decimals, or `-` if it is not finite.
fn fmt_num(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "-".to_owned()
    }
}

/// The whole JSON document of a run.
#[derive(Debug, Serialize)]
pub struct Document {
    /// UTC time the bench started, `YYYYMMDDTHHMMSSZ`.
    pub timestamp: String,
    /// The command line.
    pub command: String,
    /// Machine facts.
    pub host: Host,
    /// Client versions, by name.
    pub versions: std::collections::BTreeMap<String, String>,
    /// How the figures are measured.
    pub method: Vec<&'static str>,
    /// Per payload.
    pub payloads: Vec<PayloadReport>,
    /// Micro-bench summaries (with `--micro`).
    pub micro: Vec<super::micro::MicroResult>,
}

/// Facts about the machine, for comparing runs.
#[derive(Debug, Serialize)]
pub struct Host {
    /// CPUs available to us.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `/proc/loadavg` when the bench started.
    pub loadavg_start: String,
    /// `/proc/loadavg` when it ended.
    pub loadavg_end: String,
}

/// How the loopback figures are measured (goes into the JSON and under the table).
pub const METHOD: &[&str] = &[
    "seeders: libtorrent (no rate limits, unchoke_slots_limit -1, send_buffer_watermark 8 MiB, \
     send_buffer_low_watermark 4 MiB, watermark factor 400%, max_out_request_queue 1500, several connections per IP) and `bt seed --no-dht`; plaintext streams \
     (Transmission and qBittorrent would otherwise negotiate RC4); one \
     leecher at a time into an empty folder, checked byte for byte, removed, then `sync`",
    "wall: from spawning the leecher until it has every piece verified (bt, aria2: exit; ctorrent: its -X command; \
     libtorrent: is_seeding on a 50 ms status line; transmission, qbittorrent: 100 ms RPC polling)",
    "CPU: user+system seconds of the leecher's process tree (/proc/<pid>/stat incl. reaped children)",
    "RSS: peak resident set (VmHWM) of the largest process of the tree (every client here is one process); \
     libtorrent and qBittorrent (libtorrent 2.0) map the file, so their RSS includes payload pages",
    "seed CPU: CPU seconds of the seeder's process tree during the transfer",
    "bt vs others: bt leecher against the fastest / least-CPU other leecher of the same seeder; \
     bt seeder against the libtorrent seeder serving the same leecher",
];

impl Document {
    /// Writes the document to `<target>/bench/bench-<timestamp>.json`; returns the path.
    pub fn write(&self, target_dir: &Path) -> Result<PathBuf> {
        let dir = target_dir.join("bench");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("bench-{}.json", self.timestamp));
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// The 1-minute load average.
pub fn loadavg_1m() -> f64 {
    loadavg()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Now as `YYYYMMDDTHHMMSSZ` (UTC).
pub fn utc_timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ` (proleptic Gregorian calendar, UTC).
fn format_utc(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "19700101T000000Z");
        assert_eq!(format_utc(951_782_400), "20000229T000000Z");
        assert_eq!(format_utc(1_700_000_000), "20231114T221320Z");
    }

    fn sample(wall_secs: f64, cpu_secs: f64, seeder_cpu_secs: f64) -> Sample {
        Sample {
            wall_secs,
            cpu_secs,
            peak_rss_bytes: 10 * MIB,
            seeder_cpu_secs,
        }
    }

    fn pair(seeder: Client, leecher: Client, samples: &[Option<Sample>]) -> PairReport {
        let mut report = PairReport::new(Pair { seeder, leecher });
        for (i, s) in samples.iter().enumerate() {
            report.runs.push(Run {
                round: i + 1,
                loadavg: 0.0,
                sample: *s,
                mib_per_s: None,
                error: s.is_none().then(|| "failed".to_owned()),
            });
        }
        report
    }

    #[test]
    fn bt_is_compared_with_the_fastest_and_the_thriftiest() {
        use Client::*;
        let mut report = PayloadReport {
            label: "large".into(),
            len: 100 * MIB,
            piece_len: MIB,
            pieces: 100,
            pairs: vec![
                pair(Libtorrent, Bt, &[Some(sample(2.0, 1.0, 0.5)), None]),
                pair(Libtorrent, Libtorrent, &[Some(sample(1.0, 4.0, 0.5))]),
                pair(Libtorrent, Aria2, &[Some(sample(4.0, 0.5, 0.5))]),
                pair(Libtorrent, Transmission, &[None]),
                pair(Bt, Libtorrent, &[Some(sample(2.0, 4.0, 1.0))]),
            ],
            skipped: vec![],
        };
        report.finish();
        let bt = report.pairs[0].comparison.clone().unwrap();
        assert_eq!(
            (bt.speed_vs.as_str(), bt.speed_ratio),
            ("libtorrent->libtorrent", 0.5)
        );
        assert_eq!(
            (bt.cpu_vs.as_str(), bt.cpu_ratio),
            ("libtorrent->aria2", 2.0)
        );
        assert_eq!(report.pairs[0].medians.unwrap().runs, 1);
        assert!(report.pairs[1].comparison.is_none());
        assert!(report.pairs[3].medians.is_none());
        let seed = report.pairs[4].comparison.clone().unwrap();
        assert_eq!(seed.speed_vs, "libtorrent->libtorrent");
        assert_eq!((seed.speed_ratio, seed.cpu_ratio), (0.5, 2.0));
        let table = report.table(2);
        assert!(table.contains("libtorrent->bt"), "{table}");
        assert!(table.contains("first failure: failed"), "{table}");
    }
}
