//! Picker cost per block, from 1k to 1M pieces, with 200 peers holding random
//! bitfields (a third each at 25 %, 50 % and 75 % density).
//!
//! One iteration picks [`BATCH`] blocks (round-robin over the peers), reports
//! each as received and passes the hash of each piece that completes: what the
//! driver does per block. Building the swarm, and restoring it from a clone
//! once half the torrent is downloaded (to stay in steady state, away from
//! endgame), happens outside the timed section. Throughput is in blocks, so
//! criterion reports time per picked block; it should stay flat as the piece
//! count grows.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bt_engine::proto::picker::{BlockReceived, Picker, PickerConfig};
use bt_engine::proto::PeerKey;
use bt_meta::{Geometry, BLOCK_LEN};
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PEERS: u64 = 200;
/// 64 KiB pieces: four blocks each.
const PIECE_LEN: u32 = 4 * BLOCK_LEN;
/// Blocks per iteration.
const BATCH: usize = 8;

/// A picker for `num_pieces` pieces and 200 peers with random bitfields.
fn swarm(num_pieces: u32) -> Picker {
    let geometry = Geometry::new(
        u64::from(PIECE_LEN),
        [u64::from(num_pieces) * u64::from(PIECE_LEN)],
    )
    .unwrap();
    let mut picker = Picker::new(geometry, PickerConfig::default(), StdRng::seed_from_u64(1));
    let mut rng = StdRng::seed_from_u64(2);
    let len = num_pieces.div_ceil(8) as usize;
    let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
    for peer in 0..PEERS {
        rng.fill(&mut a[..]);
        rng.fill(&mut b[..]);
        let mut bits: Vec<u8> = match peer % 3 {
            0 => a.iter().zip(&b).map(|(x, y)| x & y).collect(),
            1 => a.clone(),
            _ => a.iter().zip(&b).map(|(x, y)| x | y).collect(),
        };
        let spare = len as u32 * 8 - num_pieces;
        if spare > 0 {
            bits[len - 1] &= !((1u8 << spare) - 1);
        }
        picker.peer_bitfield(PeerKey(peer), &bits).unwrap();
    }
    picker
}

/// Picks exactly [`BATCH`] blocks and receives them; returns the next peer.
fn pick_batch(picker: &mut Picker, mut peer: u64) -> u64 {
    let mut got = 0;
    while got < BATCH {
        let key = PeerKey(peer);
        let blocks = picker.pick_blocks(key, BATCH - got);
        got += blocks.len();
        for block in blocks {
            if let Ok(BlockReceived::New {
                piece_complete: true,
                ..
            }) = picker.block_received(key, block)
            {
                picker.hash_passed(block.piece).unwrap();
            }
        }
        peer = (peer + 1) % PEERS;
    }
    peer
}

fn pick_per_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("picker/pick_receive_per_block");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(BATCH as u64));
    for num_pieces in [1_000u32, 10_000, 100_000, 1_000_000] {
        group.bench_with_input(
            BenchmarkId::from_parameter(num_pieces),
            &num_pieces,
            |bench, &n| {
                // Built here so a filtered-out size costs nothing.
                let template = swarm(n);
                let mut picker = template.clone();
                let mut peer = 0;
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        if picker.num_have() >= n / 2 {
                            picker = template.clone();
                        }
                        let start = Instant::now();
                        peer = pick_batch(&mut picker, peer);
                        total += start.elapsed();
                    }
                    black_box(&picker);
                    total
                });
            },
        );
    }
    group.finish();
}

/// Private, so the undocumented `pub fn` the macro generates is not exported.
mod group {
    criterion::criterion_group!(benches, super::pick_per_block);
}
criterion_main!(group::benches);
