//! What `cargo xtask bench daemon` measured: one [`ClientReport`] per daemon, the table
//! (metrics down, clients across, then bt's value over each other client's), and the
//! JSON document written to `target/bench/daemon-<timestamp>.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::bench::clients::Client;
use crate::bench::report::{Host, Skipped};
use crate::payload::MIB;

/// A request timed a few times.
#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    /// The request.
    pub request: String,
    /// Median milliseconds from connecting to the last byte of the reply.
    pub median_ms: f64,
    /// Every sample, in milliseconds.
    pub samples_ms: Vec<f64>,
    /// Bytes of the last reply's body.
    pub body_bytes: usize,
}

/// Everything measured of one daemon (a figure is `None` if the run never got there).
#[derive(Clone, Debug, Serialize)]
pub struct ClientReport {
    /// Which daemon.
    pub client: Client,
    /// Its version, as its API reports it.
    pub version: String,
    /// How the torrents were added.
    pub add_method: String,
    /// Torrents given.
    pub torrents: usize,
    /// Seconds from the first add request until the last one was answered.
    pub add_calls_secs: Option<f64>,
    /// Milliseconds of each add request (bt, qBittorrent) or of each group of as many
    /// `torrent-add` calls as a request carries (Transmission), in order.
    pub add_batch_ms: Vec<f64>,
    /// Seconds from the first add request until the API showed every torrent seeding.
    pub all_seeding_secs: Option<f64>,
    /// Torrents seeding when the wait ended.
    pub seeding: usize,
    /// CPU seconds of the daemon from its start until every torrent was seeding.
    pub add_cpu_secs: Option<f64>,
    /// Bytes the daemon read through read(2)-like calls until then (/proc/PID/io rchar).
    pub add_read_bytes: Option<u64>,
    /// Peak resident set (VmHWM) of the daemon at the end of the idle period.
    pub peak_rss_bytes: Option<u64>,
    /// Resident set (VmRSS) at the end of the idle period.
    pub settled_rss_bytes: Option<u64>,
    /// OS threads of the daemon at the end of the idle period.
    pub threads: Option<u64>,
    /// Length of the idle period.
    pub idle_secs: f64,
    /// CPU seconds the daemon used over the idle period.
    pub idle_cpu_secs: Option<f64>,
    /// The full list: `sync/maindata` with rid=0, or Transmission's `torrent-get`.
    pub list_full: Option<Timing>,
    /// The delta: `sync/maindata` with the previous rid, or `torrent-get` of the
    /// recently active torrents.
    pub list_delta: Option<Timing>,
    /// Resident set after the list requests (bt keeps a snapshot per `sync/maindata`
    /// response).
    pub rss_after_lists_bytes: Option<u64>,
    /// Seconds from asking it to stop until it had exited.
    pub stop_secs: Option<f64>,
    /// Seconds from starting it again until its API answered.
    pub restart_api_secs: Option<f64>,
    /// Seconds from starting it again until every torrent was seeding.
    pub restart_secs: Option<f64>,
    /// CPU seconds of the restarted daemon until then.
    pub restart_cpu_secs: Option<f64>,
    /// Bytes the restarted daemon read until then (rchar; the data is
    /// [`super::Corpus::total_len`] bytes).
    pub restart_read_bytes: Option<u64>,
    /// Peak resident set of the restarted daemon until then.
    pub restart_peak_rss_bytes: Option<u64>,
    /// Torrents seeding when the restart wait ended.
    pub restart_seeding: usize,
    /// Things to know when reading the figures (caps hit, what differs).
    pub notes: Vec<String>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

impl ClientReport {
    /// An empty report for `client` given `torrents` torrents.
    pub fn new(client: Client, torrents: usize, idle_secs: f64) -> Self {
        ClientReport {
            client,
            version: String::new(),
            add_method: String::new(),
            torrents,
            add_calls_secs: None,
            add_batch_ms: Vec::new(),
            all_seeding_secs: None,
            seeding: 0,
            add_cpu_secs: None,
            add_read_bytes: None,
            peak_rss_bytes: None,
            settled_rss_bytes: None,
            threads: None,
            idle_secs,
            idle_cpu_secs: None,
            list_full: None,
            list_delta: None,
            rss_after_lists_bytes: None,
            stop_secs: None,
            restart_api_secs: None,
            restart_secs: None,
            restart_cpu_secs: None,
            restart_read_bytes: None,
            restart_peak_rss_bytes: None,
            restart_seeding: 0,
            notes: Vec::new(),
            error: None,
        }
    }
}

/// The corpus every daemon was given.
#[derive(Clone, Debug, Serialize)]
pub struct CorpusFacts {
    /// Torrents.
    pub torrents: usize,
    /// Bytes of each torrent's one file.
    pub file_len: u64,
    /// Piece length.
    pub piece_len: u64,
    /// Seconds the harness took to write the files and make the torrents.
    pub make_secs: f64,
}

/// The JSON document of a run.
#[derive(Debug, Serialize)]
pub struct Document {
    /// UTC time the bench started, `YYYYMMDDTHHMMSSZ`.
    pub timestamp: String,
    /// The command line.
    pub command: String,
    /// Machine facts.
    pub host: Host,
    /// The `bt` binary measured.
    pub bt_binary: String,
    /// Torrents per add request (bt, qBittorrent).
    pub batch: usize,
    /// The corpus.
    pub corpus: CorpusFacts,
    /// One report per daemon that ran.
    pub clients: Vec<ClientReport>,
    /// Daemons that did not run, and why.
    pub skipped: Vec<Skipped>,
    /// How the figures are measured.
    pub method: Vec<&'static str>,
}

/// How the figures are measured (into the JSON and under the table).
pub const METHOD: &[&str] = &[
    "one daemon at a time, each with its own fresh state folder, all on 127.0.0.1 with DHT/LSD/PeX/UPnP off; \
     all three seed the same data folder (the harness wrote it; `sync` before each daemon)",
    "add calls: from the first add request until the last was answered; all seeding: until the API showed \
     every torrent seeding (bt/qBittorrent state uploading or stalledUP in sync/maindata followed by rid, \
     polled from the last add on, every 0.5 s at first and every 5 s at most; Transmission status 6 via \
     torrent-get); CPU figures include answering these polls",
    "bt and qBittorrent get the same multipart torrents/add requests, skip_checking=true (neither hashes \
     the data); Transmission has no such option and verifies every new torrent itself, one torrent-add RPC \
     call each",
    "add CPU: user+system seconds of the daemon from its start until all seeding; read: /proc/PID/io rchar \
     (read(2) bytes, page-cache hits included; qBittorrent/libtorrent 2 reads through mmap, which rchar misses)",
    "peak RSS: VmHWM, settled RSS: VmRSS and threads: /proc/PID/status, at the end of the idle period",
    "idle CPU: CPU seconds over the idle period that starts once all are seeding (no API calls meanwhile), as % of one core",
    "list full / delta: median of 5 requests, connect to last byte; bt and qBittorrent sync/maindata rid=0 \
     and with the previous response's rid (nothing changed); Transmission torrent-get of its web client's \
     refresh fields for all torrents and for ids=recently-active; RSS after lists: VmRSS after those 10",
    "stop: from app/shutdown (session-close) until the process exited; restart: from starting it again on the \
     same state until all seeding, its CPU seconds and read bytes (re-hashing would read all the data)",
    "bt/x: bt's figure over the other daemon's (below 1: bt is faster / smaller; all metrics are lower-is-better)",
];

/// One row of the table.
struct Row {
    label: &'static str,
    decimals: usize,
    value: fn(&ClientReport) -> Option<f64>,
}

const ROWS: &[Row] = &[
    Row {
        label: "torrents seeding",
        decimals: 0,
        value: |r| Some(r.seeding as f64),
    },
    Row {
        label: "add calls (s)",
        decimals: 2,
        value: |r| r.add_calls_secs,
    },
    Row {
        label: "all seeding (s)",
        decimals: 2,
        value: |r| r.all_seeding_secs,
    },
    Row {
        label: "add: CPU (s)",
        decimals: 2,
        value: |r| r.add_cpu_secs,
    },
    Row {
        label: "add: read (MiB)",
        decimals: 1,
        value: |r| r.add_read_bytes.map(mib),
    },
    Row {
        label: "peak RSS (MiB)",
        decimals: 1,
        value: |r| r.peak_rss_bytes.map(mib),
    },
    Row {
        label: "settled RSS (MiB)",
        decimals: 1,
        value: |r| r.settled_rss_bytes.map(mib),
    },
    Row {
        label: "threads",
        decimals: 0,
        value: |r| r.threads.map(|t| t as f64),
    },
    Row {
        label: "idle CPU (% of a core)",
        decimals: 2,
        value: |r| r.idle_cpu_secs.map(|c| 100.0 * c / r.idle_secs.max(1e-9)),
    },
    Row {
        label: "list full (ms)",
        decimals: 1,
        value: |r| r.list_full.as_ref().map(|t| t.median_ms),
    },
    Row {
        label: "list full (KiB)",
        decimals: 0,
        value: |r| r.list_full.as_ref().map(|t| t.body_bytes as f64 / 1024.0),
    },
    Row {
        label: "list delta (ms)",
        decimals: 2,
        value: |r| r.list_delta.as_ref().map(|t| t.median_ms),
    },
    Row {
        label: "list delta (bytes)",
        decimals: 0,
        value: |r| r.list_delta.as_ref().map(|t| t.body_bytes as f64),
    },
    Row {
        label: "RSS after lists (MiB)",
        decimals: 1,
        value: |r| r.rss_after_lists_bytes.map(mib),
    },
    Row {
        label: "clean stop (s)",
        decimals: 2,
        value: |r| r.stop_secs,
    },
    Row {
        label: "restart: API up (s)",
        decimals: 2,
        value: |r| r.restart_api_secs,
    },
    Row {
        label: "restart: all seeding (s)",
        decimals: 2,
        value: |r| r.restart_secs,
    },
    Row {
        label: "restart: CPU (s)",
        decimals: 2,
        value: |r| r.restart_cpu_secs,
    },
    Row {
        label: "restart: read (MiB)",
        decimals: 1,
        value: |r| r.restart_read_bytes.map(mib),
    },
    Row {
        label: "restart: peak RSS (MiB)",
        decimals: 1,
        value: |r| r.restart_peak_rss_bytes.map(mib),
    },
];

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "-".to_owned(),
    }
}

impl Document {
    /// The table: a column per daemon, then `bt/x` for every other daemon.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let bt = self.clients.iter().find(|c| c.client == Client::Bt);
        let others: Vec<&ClientReport> = self
            .clients
            .iter()
            .filter(|c| c.client != Client::Bt)
            .collect();
        let _ = writeln!(
            out,
            "\n{} torrents of one {}-byte file each ({:.1} MiB in all); {} per add request; idle {} s",
            self.corpus.torrents,
            self.corpus.file_len,
            mib(self.corpus.file_len * self.corpus.torrents as u64),
            self.batch,
            self.clients.first().map_or(0.0, |c| c.idle_secs)
        );
        let mut head = format!("{:<26}", "");
        for c in &self.clients {
            let _ = write!(head, " {:>13}", c.client.name());
        }
        if bt.is_some() {
            for c in &others {
                let _ = write!(head, " {:>9}", format!("bt/{}", short(c.client)));
            }
        }
        let _ = writeln!(out, "{}", head.trim_end());
        for row in ROWS {
            let mut line = format!("{:<26}", row.label);
            for c in &self.clients {
                let _ = write!(line, " {:>13}", cell((row.value)(c), row.decimals));
            }
            if let Some(bt) = bt {
                for c in &others {
                    let ratio = match ((row.value)(bt), (row.value)(c)) {
                        (Some(a), Some(b)) if b > 0.0 && row.label != "torrents seeding" => {
                            format!("{:.2}x", a / b)
                        }
                        _ => "-".to_owned(),
                    };
                    let _ = write!(line, " {ratio:>9}");
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        for c in &self.clients {
            let _ = writeln!(out, "{} {}: {}", c.client.name(), c.version, c.add_method);
            if let Some(first) = c.add_batch_ms.first() {
                let n = c.add_batch_ms.len();
                let _ = writeln!(
                    out,
                    "  add requests: first {first:.1} ms, median {:.1} ms, last {:.1} ms, max {:.1} ms ({n} of them)",
                    crate::bench::report::median(&c.add_batch_ms).unwrap_or(f64::NAN),
                    c.add_batch_ms[n - 1],
                    c.add_batch_ms.iter().copied().fold(0.0, f64::max),
                );
            }
            for note in &c.notes {
                let _ = writeln!(out, "  note: {note}");
            }
            if let Some(error) = &c.error {
                let _ = writeln!(out, "  FAILED: {}", error.lines().next().unwrap_or(""));
            }
        }
        for s in &self.skipped {
            let _ = writeln!(out, "{}: SKIPPED: {}", s.name, s.reason);
        }
        out
    }

    /// Writes `<target>/bench/daemon-<timestamp>.json`; returns its path.
    pub fn write(&self, target_dir: &Path) -> Result<PathBuf> {
        let dir = target_dir.join("bench");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("daemon-{}.json", self.timestamp));
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// A short column name.
fn short(client: Client) -> &'static str {
    match client {
        Client::Qbittorrent => "qbt",
        Client::Transmission => "tr",
        other => other.name(),
    }
}

/// Counts by name, for notes.
pub fn describe_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_ratio_column_per_other_client() {
        let mut bt = ClientReport::new(Client::Bt, 10, 5.0);
        bt.all_seeding_secs = Some(2.0);
        bt.idle_cpu_secs = Some(0.05);
        let mut qbt = ClientReport::new(Client::Qbittorrent, 10, 5.0);
        qbt.all_seeding_secs = Some(4.0);
        qbt.error = Some("it broke\nsecond line".into());
        let doc = Document {
            timestamp: "x".into(),
            command: "c".into(),
            host: Host {
                cpus: 2,
                kernel: String::new(),
                loadavg_start: String::new(),
                loadavg_end: String::new(),
            },
            bt_binary: "bt".into(),
            batch: 100,
            corpus: CorpusFacts {
                torrents: 10,
                file_len: 4096,
                piece_len: 16384,
                make_secs: 0.1,
            },
            clients: vec![bt, qbt],
            skipped: vec![Skipped {
                name: "transmission".into(),
                reason: "not installed".into(),
            }],
            method: METHOD.to_vec(),
        };
        let table = doc.table();
        let line = table
            .lines()
            .find(|l| l.starts_with("all seeding"))
            .unwrap();
        assert!(line.ends_with("0.50x"), "{table}");
        let idle = table.lines().find(|l| l.starts_with("idle CPU")).unwrap();
        assert!(idle.contains(" 1.00 "), "{table}");
        assert!(table.contains("FAILED: it broke\n"), "{table}");
        assert!(
            table.contains("transmission: SKIPPED: not installed"),
            "{table}"
        );
    }
}
