//! Decode throughput on a large, realistic torrent built in memory: 10,000
//! files and 110,000 pieces (a 2.2 MB `pieces` string).
//!
//! `cargo bench -p bt-bencode --bench decode -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use bt_bencode::{decode, decode_strict, from_bytes, DecodeOptions, Dict, Value};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde::Deserialize;

const FILES: usize = 10_000;
const PIECES: usize = 110_000;

fn torrent() -> Vec<u8> {
    let files = (0..FILES)
        .map(|i| {
            let mut f = Dict::new();
            f.insert(&b"length"[..], Value::Int(1_000_000 + i as i64 * 7919));
            f.insert(
                &b"path"[..],
                Value::List(vec![
                    Value::owned_bytes(format!("disc {}", i / 1000)),
                    Value::owned_bytes(format!("track {i:05} - some title.flac")),
                ]),
            );
            Value::Dict(f)
        })
        .collect();
    // Pseudo-random piece hashes (a fixed LCG: the bytes need not be real).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let pieces: Vec<u8> = (0..PIECES * 20)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    let mut info = Dict::new();
    info.insert(&b"files"[..], Value::List(files));
    info.insert(&b"name"[..], Value::bytes(b"a large multi-file torrent"));
    info.insert(&b"piece length"[..], Value::Int(1 << 18));
    info.insert(&b"pieces"[..], Value::owned_bytes(pieces));
    let mut top = Dict::new();
    top.insert(
        &b"announce"[..],
        Value::bytes(b"http://tracker.example/announce"),
    );
    top.insert(
        &b"announce-list"[..],
        Value::List(vec![
            Value::List(vec![Value::bytes(b"http://tracker.example/announce")]),
            Value::List(vec![Value::bytes(b"udp://tracker.example:6969")]),
        ]),
    );
    top.insert(&b"comment"[..], Value::bytes(b"benchmark"));
    top.insert(&b"created by"[..], Value::bytes(b"bt-bencode bench"));
    top.insert(&b"creation date"[..], Value::Int(1_700_000_000));
    top.insert(&b"info"[..], Value::Dict(info));
    Value::Dict(top).encode()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Metainfo<'a> {
    announce: Option<&'a str>,
    #[serde(borrow)]
    info: Info<'a>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Info<'a> {
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u64,
    #[serde(borrow)]
    pieces: &'a [u8],
    files: Vec<File>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct File {
    length: u64,
    path: Vec<String>,
}

fn bench_decode(c: &mut Criterion) {
    let input = torrent();
    assert!(decode_strict(&input).is_ok());
    let mut g = c.benchmark_group("torrent_10k_files");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.bench_function("decode", |b| b.iter(|| decode(black_box(&input)).unwrap()));
    g.bench_function("decode_and_info_span", |b| {
        b.iter(|| {
            let v = decode(black_box(&input)).unwrap();
            let span = v.as_dict().and_then(|d| d.span(b"info")).unwrap();
            black_box(&input[span]).len()
        })
    });
    g.bench_function("decode_strict", |b| {
        b.iter(|| decode_strict(black_box(&input)).unwrap())
    });
    // The views: one checking pass, nothing allocated; then the info span.
    g.bench_function("decode_ref_and_info_span", |b| {
        b.iter(|| {
            let v = DecodeOptions::default()
                .decode_ref(black_box(&input))
                .unwrap();
            let info = v.as_dict().and_then(|d| d.get(b"info")).unwrap();
            black_box(info.raw()).len()
        })
    });
    g.bench_function("decode_ref_strict", |b| {
        b.iter(|| {
            DecodeOptions::strict()
                .decode_ref(black_box(&input))
                .unwrap()
        })
    });
    g.bench_function("from_bytes_typed", |b| {
        b.iter(|| from_bytes::<Metainfo<'_>>(black_box(&input)).unwrap())
    });
    g.finish();

    // Many small dictionaries with many keys each (a DHT-like workload).
    let mut big = BTreeMap::new();
    for i in 0..2000u32 {
        big.insert(format!("key{i:06}"), i);
    }
    let many_keys = bt_bencode::to_bytes(&big).unwrap();
    let mut g = c.benchmark_group("dict_2000_keys");
    g.throughput(Throughput::Bytes(many_keys.len() as u64));
    g.bench_function("decode_strict", |b| {
        b.iter(|| decode_strict(black_box(&many_keys)).unwrap())
    });
    g.bench_function("from_bytes_btreemap", |b| {
        b.iter(|| from_bytes::<BTreeMap<String, u32>>(black_box(&many_keys)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
