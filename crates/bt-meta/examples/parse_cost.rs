//! What loading a `.torrent` costs: time, peak heap and what stays resident.
//!
//! `cargo run --release -p bt-meta --example parse_cost -- FILE [--unlimited] [--runs N]`
//!
//! Prints one JSON object: the input's size, the fastest and median time of
//! `Metainfo::from_bytes_with` over the runs, the peak heap above what was allocated
//! before the call (counted by a global allocator), the heap still held by the loaded
//! `Metainfo`, and the process's peak resident set (`VmHWM`). `cargo xtask bench
//! parse` runs it beside `bt info` and libtorrent.

use std::time::Instant;

use bt_meta::{LoadConfig, Metainfo};
use peak_alloc::PeakAlloc;
use serde_json::json;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut config = LoadConfig::default();
    let mut runs = 5usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--unlimited" => config = LoadConfig::unlimited(),
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).unwrap_or(runs),
            _ => file = Some(a),
        }
    }
    let Some(file) = file else {
        eprintln!("usage: parse_cost FILE [--unlimited] [--runs N]");
        std::process::exit(2);
    };
    let input = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{file}: {e}");
            std::process::exit(1);
        }
    };
    let mut times = Vec::new();
    let (mut peak, mut resident, mut heap_len) = (0, 0, 0);
    let mut outcome = Ok((0, 0));
    for _ in 0..runs.max(1) {
        HEAP.reset_peak_usage();
        let before = HEAP.current_usage();
        let start = Instant::now();
        let parsed = Metainfo::from_bytes_with(&input, &config);
        times.push(start.elapsed().as_secs_f64());
        peak = peak.max(HEAP.peak_usage() - before);
        resident = HEAP.current_usage() - before;
        outcome = match &parsed {
            Ok(m) => {
                heap_len = m.heap_len();
                Ok((m.info.files().len(), m.info.num_pieces()))
            }
            Err(e) => Err(e.to_string()),
        };
        drop(parsed);
    }
    times.sort_by(f64::total_cmp);
    let (files, pieces, error) = match outcome {
        Ok((f, p)) => (Some(f), Some(p), None),
        Err(e) => (None, None, Some(e)),
    };
    let out = json!({
        "file": file,
        "input_len": input.len(),
        "ok": error.is_none(),
        "error": error,
        "files": files,
        "pieces": pieces,
        "runs": times.len(),
        "time_s_min": times.first(),
        "time_s_median": times.get(times.len() / 2),
        "peak_heap": peak,
        "resident_heap": resident,
        "heap_len": heap_len,
        "vm_hwm_kib": vm_hwm_kib(),
    });
    println!("{out}");
}
