//! Storage throughput: SHA-1 of 1 MiB pieces read back from the page cache, and 16 KiB
//! block writes to a temporary file (with and without the final piece check).
//!
//! A 64 MiB single-file torrent of 1 MiB pieces lives in a temporary folder; each
//! iteration handles one whole piece, cycling through all 64, so throughput is in bytes
//! and the inverse of GiB/s is CPU-seconds per GiB (every case runs on one thread, except
//! `check_existing`, which reports wall time on two). Wall time suffers when the machine
//! is busy, so a report of thread CPU time per GiB follows the criterion cases.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bt_engine::storage::{sha1, FileSpec, StorageLayout, TorrentStorage};
use bt_meta::{Geometry, InfoHash, PieceIndex, BLOCK_LEN};
use criterion::{Criterion, Throughput};
use rand::{Rng, SeedableRng};

const PIECE_LEN: usize = 1 << 20;
const PIECES: u32 = 64;

/// A torrent of random bytes at `dir/bench.bin`, and the bytes.
fn torrent(dir: &Path) -> (StorageLayout, Vec<u8>) {
    let total = PIECE_LEN * PIECES as usize;
    let mut payload = vec![0u8; total];
    rand::rngs::StdRng::seed_from_u64(1).fill(&mut payload[..]);
    let layout = StorageLayout {
        info_hash: InfoHash([1; 20]),
        geometry: Geometry::new(PIECE_LEN as u64, [total as u64]).unwrap(),
        piece_hashes: payload.chunks(PIECE_LEN).map(sha1).collect(),
        files: vec![FileSpec {
            path: dir.join("bench.bin"),
            len: total as u64,
            pad: false,
        }],
    };
    (layout, payload)
}

fn write_piece(s: &TorrentStorage, payload: &[u8], piece: u32) {
    let start = piece as usize * PIECE_LEN;
    for (i, block) in payload[start..start + PIECE_LEN]
        .chunks(BLOCK_LEN as usize)
        .enumerate()
    {
        s.write_block(PieceIndex(piece), i as u32 * BLOCK_LEN, block)
            .unwrap();
    }
}

fn storage(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, payload) = torrent(tmp.path());
    let s = TorrentStorage::open(layout, tmp.path()).unwrap();
    for p in 0..PIECES {
        write_piece(&s, &payload, p);
        assert!(s.verify_piece(PieceIndex(p)).unwrap());
    }

    let mut g = c.benchmark_group("storage");
    g.throughput(Throughput::Bytes(PIECE_LEN as u64));

    g.bench_function("sha1_1mib_in_memory", |b| {
        let mut p = 0;
        b.iter(|| {
            p = (p + 1) % PIECES as usize;
            black_box(sha1(&payload[p * PIECE_LEN..(p + 1) * PIECE_LEN]))
        })
    });

    g.bench_function("hash_piece_1mib_page_cache", |b| {
        let mut p = 0;
        b.iter(|| {
            p = (p + 1) % PIECES;
            black_box(s.hash_piece(PieceIndex(p)).unwrap())
        })
    });

    g.bench_function("write_block_16kib_x64", |b| {
        let mut p = 0;
        b.iter(|| {
            p = (p + 1) % PIECES;
            write_piece(&s, &payload, p);
            // Drop the in-order hash so the next round starts clean (not timed apart).
            s.forget_piece(PieceIndex(p));
        })
    });

    g.bench_function("write_block_16kib_x64_then_verify", |b| {
        let mut p = 0;
        b.iter(|| {
            p = (p + 1) % PIECES;
            write_piece(&s, &payload, p);
            assert!(s.verify_piece(PieceIndex(p)).unwrap());
        })
    });

    g.bench_function("write_block_16kib_x64_reversed_then_verify", |b| {
        let mut p = 0;
        b.iter(|| {
            p = (p + 1) % PIECES;
            let start = p as usize * PIECE_LEN;
            let piece = &payload[start..start + PIECE_LEN];
            for (i, block) in piece.chunks(BLOCK_LEN as usize).enumerate().rev() {
                s.write_block(PieceIndex(p), i as u32 * BLOCK_LEN, block)
                    .unwrap();
            }
            assert!(s.verify_piece(PieceIndex(p)).unwrap());
        })
    });

    g.throughput(Throughput::Bytes(PIECE_LEN as u64 * u64::from(PIECES)));
    g.sample_size(10);
    g.bench_function("check_existing_64mib_2_threads", |b| {
        b.iter(|| {
            let have = s.check_existing(2, |_| {}).unwrap();
            assert!(have.iter().all(|&h| h));
        })
    });
    g.finish();
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux), so the
/// figures hold on a busy machine where wall time does not.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Runs `f` once per piece for `rounds` passes over the torrent and prints the thread's
/// CPU seconds per GiB handled.
fn cpu_per_gib(name: &str, rounds: u32, mut f: impl FnMut(u32)) {
    let Some(start) = thread_cpu() else {
        println!("{name}: no /proc/thread-self/schedstat, CPU time not measured");
        return;
    };
    for _ in 0..rounds {
        for p in 0..PIECES {
            f(p);
        }
    }
    let cpu = thread_cpu().unwrap_or(start) - start;
    let gib = f64::from(rounds * PIECES) * PIECE_LEN as f64 / f64::from(1u32 << 30);
    println!("{name:<44} {:.3} CPU-s/GiB", cpu.as_secs_f64() / gib);
}

/// The per-GiB CPU cost of the download path, independent of how busy the machine is.
fn cpu_report() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, payload) = torrent(tmp.path());
    let s = TorrentStorage::open(layout, tmp.path()).unwrap();
    for p in 0..PIECES {
        write_piece(&s, &payload, p);
        assert!(s.verify_piece(PieceIndex(p)).unwrap());
    }
    println!("\nCPU time per GiB (one thread, data in page cache):");
    cpu_per_gib("sha1 in memory", 8, |p| {
        let start = p as usize * PIECE_LEN;
        black_box(sha1(&payload[start..start + PIECE_LEN]));
    });
    cpu_per_gib("hash_piece (read back + sha1)", 8, |p| {
        black_box(s.hash_piece(PieceIndex(p)).unwrap());
    });
    cpu_per_gib("write_block x64 in order + verify_piece", 8, |p| {
        write_piece(&s, &payload, p);
        assert!(s.verify_piece(PieceIndex(p)).unwrap());
    });
    cpu_per_gib("write_block x64 reversed + verify_piece", 8, |p| {
        let start = p as usize * PIECE_LEN;
        let piece = &payload[start..start + PIECE_LEN];
        for (i, block) in piece.chunks(BLOCK_LEN as usize).enumerate().rev() {
            s.write_block(PieceIndex(p), i as u32 * BLOCK_LEN, block)
                .unwrap();
        }
        assert!(s.verify_piece(PieceIndex(p)).unwrap());
    });
}

/// Runs the criterion cases, then the CPU-time report (skipped in `--test`/`--list` runs).
fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    storage(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--test" || a == "--list") {
        cpu_report();
    }
}
