//! `cargo xtask bench parse`: what loading a `.torrent` costs, bt beside libtorrent.
//!
//! Makes two torrents in `target/bench/parse/`: the hostile one of issue 21 (a million
//! one-byte files, about 30 MB, valid bencode and geometry) and a typical one (4 files,
//! 1,000 pieces of 256 KiB). For each it measures, in one run:
//!
//! - `Metainfo::from_bytes` in a release build (`bt-meta`'s `parse_cost` example):
//!   fastest and median time, peak heap above the input (a counting allocator), heap
//!   held by the loaded torrent, and the process's peak RSS;
//! - `bt info FILE` as a process (output to /dev/null): wall time and peak RSS;
//! - libtorrent 2.0.8 (`/usr/bin/python3`, `lt.torrent_info` with its load limits
//!   raised so it accepts the million files; it reads the file itself, a few
//!   milliseconds from the page cache): fastest and median time, the growth of
//!   the process's peak RSS while parsing, and the resident growth per loaded torrent
//!   (many copies held, averaged).
//!
//! A table goes to stdout and the figures to `target/bench/parse-<timestamp>.json`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::layout;
use crate::peers::libtorrent;
use crate::process;

/// The usage of `cargo xtask bench parse`.
pub const USAGE: &str = "\
usage: cargo xtask bench parse [--files N] [--runs N]

Builds a torrent of N one-byte files (default 1000000, about 30 MB) and a typical one
(4 files, 1000 pieces), then measures Metainfo::from_bytes, `bt info` and libtorrent
(python3-libtorrent, load limits raised) on both: time, peak memory, resident bytes
per loaded torrent. Figures go to target/bench/parse-<timestamp>.json.
";

/// Time allowed for one measured child (building excluded).
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Measures a command as a child of python: wall time and the child's peak RSS.
const TIME_COMMAND: &str = r#"
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"ok": r.returncode == 0, "time_s": dt, "max_rss_kib": rss,
                  "stderr": r.stderr.decode(errors="replace")[-400:]}))
"#;

/// libtorrent: parse time and memory with raised limits, resident bytes per torrent.
const LIBTORRENT: &str = r#"
import json, resource, sys, time
import libtorrent as lt
path, runs, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
limits = {"max_buffer_size": 1 << 30, "max_pieces": 1 << 30,
          "max_decode_depth": 1000, "max_decode_tokens": 1 << 30}
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
hwm_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(runs):
    t = time.perf_counter()
    ti = lt.torrent_info(path, limits)
    times.append(time.perf_counter() - t)
    files = ti.num_files()
    del ti
hwm_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = rss_kib()
held = [lt.torrent_info(path, limits) for _ in range(hold)]
after = rss_kib()
times.sort()
print(json.dumps({"version": lt.__version__, "files": files, "runs": runs,
                  "time_s_min": times[0], "time_s_median": times[len(times) // 2],
                  "peak_rss_growth_kib": hwm_after - hwm_before, "max_rss_kib": hwm_after,
                  "resident_per_torrent_bytes": (after - before) * 1024 / max(hold, 1),
                  "held": hold}))
"#;

struct Options {
    files: usize,
    runs: usize,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Self> {
        let mut o = Options {
            files: 1_000_000,
            runs: 5,
        };
        let mut it = args.iter();
        while let Some(&a) = it.next() {
            let mut number = |what: &str| -> Result<usize> {
                it.next()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("{what} needs a number"))
            };
            match a {
                "--files" => o.files = number("--files")?,
                "--runs" => o.runs = number("--runs")?.max(1),
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        Ok(o)
    }
}

/// Runs `cargo xtask bench parse <args>`.
pub fn run(args: &[&str]) -> Result<()> {
    if args.iter().any(|a| matches!(*a, "-h" | "--help")) {
        print!("{USAGE}");
        return Ok(());
    }
    let opts = Options::parse(args)?;
    let dir = layout::target_dir().join("bench").join("parse");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let many = dir.join(format!("files-{}.torrent", opts.files));
    std::fs::write(&many, many_files(opts.files)).context("writing the torrent")?;
    let typical = dir.join("typical.torrent");
    std::fs::write(&typical, typical_torrent()).context("writing the torrent")?;

    println!("== building bt and bt-meta's parse_cost (release)");
    let mut build = Command::new(layout::cargo());
    build
        .args(["build", "--release", "-p", "bt-cli", "--bin", "bt"])
        .args(["-p", "bt-meta", "--example", "parse_cost"])
        .current_dir(layout::workspace_root());
    let status = build.status().context("cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let release = layout::target_dir().join("release");
    let parse_cost = release.join("examples").join("parse_cost");
    let bt = release.join("bt");

    let mut doc = json!({
        "command": std::iter::once("cargo xtask bench parse").chain(args.iter().copied()).collect::<Vec<_>>().join(" "),
        "timestamp": super::report::utc_timestamp(),
        "loadavg_start": super::report::loadavg(),
        "torrents": {},
    });
    let lt_ok = libtorrent::is_installed();
    for (label, path, hold) in [("many_files", &many, 1usize), ("typical", &typical, 1000)] {
        let size = std::fs::metadata(path)?.len();
        println!("== {label}: {} ({size} bytes)", path.display());
        let ours = child_json(
            "parse_cost",
            Command::new(&parse_cost)
                .arg(path)
                .args(["--runs", &opts.runs.to_string()]),
        )?;
        let info = child_json(
            "bt info",
            Command::new(libtorrent::PYTHON)
                .args(["-c", TIME_COMMAND])
                .arg(&bt)
                .arg("info")
                .arg(path),
        )?;
        let lt = if lt_ok {
            child_json(
                "libtorrent",
                Command::new(libtorrent::PYTHON)
                    .args(["-c", LIBTORRENT])
                    .arg(path)
                    .arg(opts.runs.to_string())
                    .arg(hold.to_string()),
            )?
        } else {
            json!({"skipped": "python3-libtorrent is not installed"})
        };
        doc["torrents"][label] = json!({
            "file": path, "size": size, "bt_meta": ours, "bt_info": info, "libtorrent": lt,
        });
    }
    doc["loadavg_end"] = json!(super::report::loadavg());
    println!("\n{}", table(&doc));
    let out = layout::target_dir()
        .join("bench")
        .join(format!("parse-{}.json", super::report::utc_timestamp()));
    std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)?;
    println!("bench parse: figures written to {}", out.display());
    Ok(())
}

/// Runs a child that prints one JSON object as its last line.
fn child_json(name: &str, cmd: &mut Command) -> Result<Value> {
    let out = process::run(name, cmd, CHILD_TIMEOUT)?;
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("{name}: {out}"))
}

/// Bytes in MB, or kB below a megabyte.
fn bytes(v: &Value) -> String {
    match v.as_f64() {
        Some(b) if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        Some(b) => format!("{:.1} kB", b / 1e3),
        None => "-".into(),
    }
}

fn kib(v: &Value) -> String {
    bytes(&json!(v.as_f64().map(|k| k * 1024.0)))
}

/// Seconds, or milliseconds below a second.
fn secs(v: &Value) -> String {
    match v.as_f64() {
        Some(s) if s >= 1.0 => format!("{s:.2} s"),
        Some(s) => format!("{:.3} ms", s * 1e3),
        None => "-".into(),
    }
}

/// The table printed at the end.
fn table(doc: &Value) -> String {
    let mut t = String::new();
    for (label, r) in doc["torrents"].as_object().into_iter().flatten() {
        let (m, i, l) = (&r["bt_meta"], &r["bt_info"], &r["libtorrent"]);
        let _ = writeln!(t, "{label}: {} bytes, {} files", r["size"], m["files"]);
        let _ = writeln!(
            t,
            "  {:<34} {:>10} {:>10} {:>12} {:>16}",
            "", "time min", "median", "peak mem", "resident/torrent"
        );
        let _ = writeln!(
            t,
            "  {:<34} {:>10} {:>10} {:>12} {:>16}",
            "bt Metainfo::from_bytes (heap)",
            secs(&m["time_s_min"]),
            secs(&m["time_s_median"]),
            bytes(&m["peak_heap"]),
            bytes(&m["resident_heap"]),
        );
        let _ = writeln!(
            t,
            "  {:<34} {:>10} {:>10} {:>12} {:>16}",
            "bt info (process, peak RSS)",
            secs(&i["time_s"]),
            "",
            kib(&i["max_rss_kib"]),
            "",
        );
        let lt_resident = bytes(&l["resident_per_torrent_bytes"]);
        let _ = writeln!(
            t,
            "  {:<34} {:>10} {:>10} {:>12} {:>16}",
            "libtorrent torrent_info (RSS)",
            secs(&l["time_s_min"]),
            secs(&l["time_s_median"]),
            kib(&l["peak_rss_growth_kib"]),
            lt_resident,
        );
        if let Some(s) = l["skipped"].as_str() {
            let _ = writeln!(t, "  libtorrent skipped: {s}");
        }
    }
    t
}

/// The hostile torrent of issue 21: `n` one-byte files `f000000`, ... in 16 KiB
/// pieces, with a tracker. About 30 bytes a file.
pub fn many_files(n: usize) -> Vec<u8> {
    const PIECE: usize = 16384;
    let mut t = Vec::with_capacity(n * 31 + 100);
    let announce = b"http://127.0.0.1:6969/announce";
    t.extend(format!("d8:announce{}:", announce.len()).as_bytes());
    t.extend(announce);
    t.extend(b"4:infod5:filesl");
    for i in 0..n {
        let name = format!("f{i:06}");
        t.extend(format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()).as_bytes());
    }
    let pieces = n.div_ceil(PIECE);
    t.extend(
        format!(
            "e4:name4:many12:piece lengthi{PIECE}e6:pieces{}:",
            pieces * 20
        )
        .as_bytes(),
    );
    let zeros = vec![0u8; PIECE];
    for p in 0..pieces {
        let len = (n - p * PIECE).min(PIECE);
        t.extend(Sha1::digest(&zeros[..len]));
    }
    t.extend(b"ee");
    t
}

/// A typical torrent: 4 files, 1000 pieces of 256 KiB, two trackers.
fn typical_torrent() -> Vec<u8> {
    const PIECE: u64 = 256 * 1024;
    let total = 1000 * PIECE;
    let mut t = b"d8:announce30:http://127.0.0.1:6969/announce13:announce-listll30:http://127.0.0.1:6969/announceel30:http://127.0.0.1:6970/announceee".to_vec();
    t.extend(b"7:comment7:typical4:infod5:filesl");
    let lens = [total / 2, total / 4, total / 8, total / 8];
    for (i, len) in lens.iter().enumerate() {
        let name = format!("part {i}.mkv");
        t.extend(format!("d6:lengthi{len}e4:pathl{}:{name}ee", name.len()).as_bytes());
    }
    t.extend(format!("e4:name7:typical12:piece lengthi{PIECE}e6:pieces20000:").as_bytes());
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t.push((x >> 56) as u8);
    }
    t.extend(b"ee");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_torrents_load() {
        for t in [many_files(3000), typical_torrent()] {
            let m = bt_meta::Metainfo::from_bytes(&t).unwrap();
            assert!(m.info.files().len() >= 4);
        }
        let m = bt_meta::Metainfo::from_bytes(&typical_torrent()).unwrap();
        assert_eq!(m.info.num_pieces(), 1000);
    }
}
