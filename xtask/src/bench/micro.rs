//! The criterion micro-benches of the library crates, run in sequence with short
//! measurement times; only their summary lines are printed.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::layout;
use crate::process::{Proc, MAX_LIFETIME};

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

/// Runs every micro-bench, printing summary lines as they come. Each runs under the
/// harness's hard process lifetime, which includes compiling it.
pub fn run_all() -> Result<Vec<MicroResult>> {
    let mut results = Vec::new();
    for &(package, bench) in MICRO_BENCHES {
        let command = command_line(package, bench);
        println!(
            "\n== {command} -- {}  (build + run, at most {} s)",
            SHORT_RUN.join(" "),
            MAX_LIFETIME.as_secs()
        );
        let mut cmd = Command::new(layout::cargo());
        cmd.args(["bench", "-p", package, "--bench", bench, "--"])
            .args(SHORT_RUN)
            .current_dir(layout::workspace_root());
        let mut proc = Proc::spawn(bench, &cmd, None)?;
        let mut lines = Vec::new();
        // Reads until stdout closes (an error naming the exit) or the lifetime ends.
        let outcome = proc.read_lines_until(MAX_LIFETIME, "the end of its output", |line| {
            // Progress may be redrawn with carriage returns: keep the final text.
            let line = line.rsplit('\r').next().unwrap_or_default();
            if is_summary(line) {
                println!("{line}");
                lines.push(line.to_owned());
            }
            Ok(None::<()>)
        });
        let status = proc.wait(Duration::from_secs(10)).ok();
        let ok = status.is_some_and(|s| s.success());
        if !ok {
            let why = outcome.err().map(|e| format!("{e:#}")).unwrap_or_default();
            println!("   ({command} failed: {})", why.trim_end());
        }
        results.push(MicroResult { command, ok, lines });
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
    // After `change:`, criterion repeats `time:`/`thrpt:` as percentages.
    let is_change =
        (trimmed.starts_with("time:") || trimmed.starts_with("thrpt:")) && trimmed.contains('%');
    !trimmed.is_empty()
        && !is_change
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
            "                        time:   [+14.786% +26.195% +39.038%] (p = 0.00 < 0.05)",
            "                        thrpt:  [-28.077% -20.758% -12.881%]",
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
