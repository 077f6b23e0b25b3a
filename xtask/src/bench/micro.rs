//! The criterion micro-benches of the library crates, run in sequence with short
//! measurement times; only their summary lines are printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::layout;

/// The micro-benches: (package, bench target).
pub const MICRO_BENCHES: &[(&str, &str)] = &[
    ("bt-bencode", "decode"),
    ("bt-wire", "wire"),
    ("bt-engine", "picker"),
    ("bt-engine", "storage"),
];

/// Criterion arguments for a short run.
const SHORT_RUN: &[&str] = &[
    "--warm-up-time",
    "0.5",
    "--measurement-time",
    "1",
    "--noplot",
];

/// The command line of one micro-bench, as a user would type it.
pub fn command_line(package: &str, bench: &str) -> String {
    format!("cargo bench -p {package} --bench {bench}")
}

/// One micro-bench's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MicroResult {
    /// `cargo bench -p ... --bench ...`.
    pub command: String,
    /// True if it exited 0.
    pub ok: bool,
    /// Its summary lines (benchmark names, `time:` and `thrpt:` lines, custom reports).
    pub lines: Vec<String>,
}

/// Runs every micro-bench, printing summary lines as they come.
pub fn run_all() -> Result<Vec<MicroResult>> {
    let mut results = Vec::new();
    for &(package, bench) in MICRO_BENCHES {
        let command = command_line(package, bench);
        println!("\n== {command} -- {}", SHORT_RUN.join(" "));
        let mut cmd = Command::new(layout::cargo());
        cmd.args(["bench", "-p", package, "--bench", bench, "--"])
            .args(SHORT_RUN)
            .current_dir(layout::workspace_root())
            .stdout(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {command}"))?;
        let mut lines = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                // Progress may be redrawn with carriage returns: keep the final text.
                let line = line?;
                let line = line.rsplit('\r').next().unwrap_or_default().to_owned();
                if is_summary(&line) {
                    println!("{line}");
                    lines.push(line);
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            println!("   ({command} failed: {status})");
        }
        results.push(MicroResult {
            command,
            ok: status.success(),
            lines,
        });
    }
    Ok(results)
}

/// True for the lines worth keeping from criterion's output: benchmark names with their
/// `time:`/`thrpt:` lines and anything a bench prints itself; not progress, outlier
/// counts or comparisons with an earlier run.
fn is_summary(line: &str) -> bool {
    let trimmed = line.trim();
    const NOISE: &[&str] = &[
        "Benchmarking ",
        "Found ",
        "Gnuplot ",
        "Warning:",
        "change:",
        "No change",
        "Change within",
        "Performance has",
        "time is ",
    ];
    const OUTLIERS: &[&str] = &["low mild", "low severe", "high mild", "high severe"];
    !trimmed.is_empty()
        && !NOISE.iter().any(|n| trimmed.starts_with(n))
        && !OUTLIERS.iter().any(|o| trimmed.ends_with(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_noise_is_dropped() {
        let keep = [
            "decode/torrent          time:   [1.0 µs 1.1 µs 1.2 µs]",
            "                        thrpt:  [1.2 GiB/s 1.3 GiB/s 1.4 GiB/s]",
            "storage/hash_piece",
            "hash_piece                                   0.712 CPU-s/GiB",
        ];
        let drop = [
            "Benchmarking decode/torrent: Warming up for 500.00 ms",
            "Found 3 outliers among 100 measurements (3.00%)",
            "  2 (2.00%) high mild",
            "                        change: [-1.0% +0.5% +2.0%] (p = 0.50 > 0.05)",
            "                        No change in performance detected.",
            "Gnuplot not found, using plotters backend",
            "",
        ];
        for line in keep {
            assert!(is_summary(line), "{line}");
        }
        for line in drop {
            assert!(!is_summary(line), "{line}");
        }
    }
}
