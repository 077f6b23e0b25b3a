//! Throughput of the message codec on a stream of 16 KiB `piece` messages.

#![allow(missing_docs)]

use bt_wire::{piece_header, Message, MessageCodec};
use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tokio_util::codec::{Decoder, Encoder};

const BLOCK: usize = 16 * 1024;
const TOTAL: usize = 64 * 1024 * 1024;
const COUNT: usize = TOTAL / BLOCK;

fn piece_stream() -> BytesMut {
    let block = Bytes::from(vec![0xa5u8; BLOCK]);
    let mut buf = BytesMut::with_capacity(COUNT * (BLOCK + 13));
    let mut codec = MessageCodec::new();
    for i in 0..COUNT as u32 {
        let msg = Message::Piece {
            index: i / 16,
            begin: (i % 16) * BLOCK as u32,
            data: block.clone(),
        };
        codec.encode(msg, &mut buf).unwrap();
    }
    buf
}

fn decode(c: &mut Criterion) {
    let stream = piece_stream();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.sample_size(20);

    // The whole stream in one buffer: framing cost only. Timed by hand so that neither
    // copying the 64 MiB input nor freeing it afterwards is counted.
    group.bench_function("decode_64MiB_of_16KiB_pieces", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut buf = stream.clone();
                let mut msgs = Vec::with_capacity(COUNT);
                let start = Instant::now();
                let mut codec = MessageCodec::new();
                while let Some(msg) = codec.decode(&mut buf).unwrap() {
                    msgs.push(black_box(msg));
                }
                total += start.elapsed();
                assert_eq!(msgs.len(), COUNT);
            }
            total
        })
    });

    // As a socket would deliver it: 64 KiB reads appended to a read buffer.
    group.bench_function("decode_64MiB_of_16KiB_pieces_in_64KiB_reads", |b| {
        b.iter(|| {
            let mut codec = MessageCodec::new();
            let mut buf = BytesMut::with_capacity(8 * 1024);
            let mut n = 0usize;
            for chunk in stream.chunks(64 * 1024) {
                buf.extend_from_slice(chunk);
                while let Some(msg) = codec.decode(&mut buf).unwrap() {
                    black_box(&msg);
                    n += 1;
                }
            }
            assert_eq!(n, COUNT);
        })
    });

    let block = Bytes::from(vec![0x5au8; BLOCK]);
    group.bench_function("encode_64MiB_of_16KiB_pieces", |b| {
        let mut buf = BytesMut::with_capacity(TOTAL + COUNT * 13);
        b.iter(|| {
            buf.clear();
            let mut codec = MessageCodec::new();
            for i in 0..COUNT as u32 {
                let msg = Message::Piece {
                    index: i,
                    begin: 0,
                    data: block.clone(),
                };
                codec.encode(msg, &mut buf).unwrap();
            }
            black_box(&buf);
        })
    });

    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function("piece_header_x4096", |b| {
        b.iter(|| {
            for i in 0..COUNT as u32 {
                black_box(piece_header(black_box(i), 0, BLOCK as u32));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
