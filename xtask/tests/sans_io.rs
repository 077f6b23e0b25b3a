//! The engine's decisions stay sans-I/O: nothing under `crates/bt-engine/src/proto/` or
//! `crates/bt-utp/src/` (outside their tests) names tokio, sockets, files, threads, the
//! clock or ambient randomness. Time comes in as `now`, randomness from seeded generators,
//! addresses as `core::net` values, so the same inputs give the same decisions in the
//! driver and in the simulator.

use std::path::{Path, PathBuf};

/// What the sans-I/O core must not name, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "the async runtime"),
    ("std::net", "sockets (use core::net for addresses)"),
    ("std::fs", "files"),
    ("std::thread", "threads"),
    ("std::process", "processes"),
    ("Instant::now", "the clock (take `now` as an argument)"),
    ("SystemTime::now", "the clock"),
    (
        "rand::random",
        "ambient randomness (use a seeded generator)",
    ),
    ("thread_rng", "ambient randomness (use a seeded generator)"),
    ("OsRng", "ambient randomness"),
    ("TcpStream", "sockets"),
    ("UdpSocket", "sockets"),
];

fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/bt-engine/src/proto")
}

/// bt-utp is sans-I/O as a whole: the driver owns the UDP socket and the clock.
fn utp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/bt-utp/src")
}

/// Every `.rs` file under `dir` that is not a test module (`tests.rs`, `tests/`).
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            out.push(path);
        }
    }
}

/// The lines of `text` that name something forbidden, up to its first `#[cfg(test)]`
/// (test modules sit at the end of a file and may use the clock for a base instant).
fn violations(file: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        for (what, why) in FORBIDDEN {
            if code.contains(what) {
                found.push(format!(
                    "{file}:{}: `{what}` ({why}): {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

/// The violations in the Rust sources under `dir`, which must hold at least `modules`
/// files (so a moved folder cannot pass by being empty).
fn check_dir(dir: &Path, modules: usize) -> Vec<String> {
    let mut files = Vec::new();
    sources(dir, &mut files);
    assert!(
        files.len() >= modules,
        "{} has its modules: {files:?}",
        dir.display()
    );
    let mut bad = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        bad.extend(violations(&file.display().to_string(), &text));
    }
    bad
}

#[test]
fn the_proto_core_names_no_io_clock_or_ambient_randomness() {
    let bad = check_dir(&proto_dir(), 10);
    assert!(
        bad.is_empty(),
        "proto/ must stay sans-I/O:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_utp_crate_names_no_io_clock_or_ambient_randomness() {
    let bad = check_dir(&utp_dir(), 7);
    assert!(
        bad.is_empty(),
        "bt-utp must stay sans-I/O:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_check_sees_what_it_looks_for() {
    let text = "use std::net::SocketAddr;\nfn f() { let t = Instant::now(); }\n// tokio in a comment\n#[cfg(test)]\nmod tests { fn g() { std::time::Instant::now(); } }\n";
    let found = violations("x.rs", text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("x.rs:1") && found[0].contains("std::net"));
    assert!(found[1].contains("x.rs:2") && found[1].contains("Instant::now"));
}
