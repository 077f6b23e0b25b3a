//! Loading a torrent costs at most four times its size in memory, plus a small fixed
//! amount, whatever its shape: random valid torrents (proptest) and hostile shapes
//! (many files, many pieces, deep folders, many trackers and web seeds, long strings,
//! wide dictionaries, deep nesting, colliding names).
//!
//! A counting global allocator measures the peak heap of each `Metainfo::from_bytes`
//! above what was allocated before it (the input belongs to the caller). It counts
//! the whole process, so this binary holds only these tests, and each test holds
//! `MEASURE` from start to end: nothing else allocates while one measures.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bt_meta::{LoadConfig, Metainfo};
use peak_alloc::PeakAlloc;
use proptest::prelude::*;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// One test at a time.
static MEASURE: Mutex<()> = Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    MEASURE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bound: four times the input, plus this.
const FIXED: usize = 256 << 10;

/// Loads `input` with `config`; returns whether it loaded and the peak heap above the
/// heap before the call (the loaded torrent included while it is alive).
fn peak_of(input: &[u8], config: &LoadConfig) -> (Result<usize, String>, usize) {
    HEAP.reset_peak_usage();
    let before = HEAP.current_usage();
    let parsed = Metainfo::from_bytes_with(input, config);
    let peak = HEAP.peak_usage().saturating_sub(before);
    let outcome = parsed
        .map(|m| m.info.files().len())
        .map_err(|e| e.to_string());
    (outcome, peak)
}

fn assert_within_bound(what: &str, input: &[u8], config: &LoadConfig) -> Result<usize, String> {
    let start = Instant::now();
    let (outcome, peak) = peak_of(input, config);
    let bound = 4 * input.len() + FIXED;
    assert!(
        peak <= bound,
        "{what}: {peak} bytes at peak for {} bytes of input (bound {bound}); {outcome:?}",
        input.len()
    );
    // Generous (debug build, shared machine): the point is "in proportion".
    let limit = Duration::from_secs(20);
    assert!(
        start.elapsed() < limit,
        "{what}: took {:?}",
        start.elapsed()
    );
    eprintln!(
        "{what}: {} bytes, peak {peak} ({:.2}x), {outcome:?}",
        input.len(),
        peak as f64 / input.len() as f64
    );
    outcome
}

/// Encodes a byte string.
fn bstr(out: &mut Vec<u8>, b: &[u8]) {
    out.extend(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend(b);
}

/// Appends `4:name` and its value etc.: a v1 `info` of `files` (path, length, attr)
/// in 16 KiB pieces, with the pieces string.
fn v1_info(out: &mut Vec<u8>, files: &[(Vec<Vec<u8>>, u64, &str)], piece_len: u64) {
    let total: u64 = files.iter().map(|f| f.1).sum::<u64>().max(1);
    out.extend(b"d5:filesl");
    for (path, len, attr) in files {
        out.push(b'd');
        if !attr.is_empty() {
            bstr(out, b"attr");
            bstr(out, attr.as_bytes());
        }
        out.extend(format!("6:lengthi{len}e4:pathl").as_bytes());
        for e in path {
            bstr(out, e);
        }
        out.extend(b"ee");
    }
    let pieces = total.div_ceil(piece_len) as usize;
    out.extend(
        format!(
            "e4:name4:root12:piece lengthi{piece_len}e6:pieces{}:",
            pieces * 20
        )
        .as_bytes(),
    );
    out.extend(std::iter::repeat_n(9u8, pieces * 20));
    out.push(b'e');
}

/// A whole v1 torrent around `v1_info`, with `extra` (already encoded key/value
/// pairs that sort before `info`) in the root.
fn v1_torrent(files: &[(Vec<Vec<u8>>, u64, &str)], extra: &[u8]) -> Vec<u8> {
    let mut out = b"d".to_vec();
    out.extend(extra);
    out.extend(b"4:info");
    v1_info(&mut out, files, 16384);
    out.push(b'e');
    out
}

/// A v2 tree node: files (name -> length) and folders.
#[derive(Default, Debug, Clone)]
struct Dir {
    entries: std::collections::BTreeMap<Vec<u8>, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    File(u64),
    Dir(Dir),
}

impl Dir {
    /// Adds a file unless its path runs into a file or folder already there.
    fn add(&mut self, path: &[Vec<u8>], len: u64) {
        let Some((last, dirs)) = path.split_last() else {
            return;
        };
        let mut d = self;
        for name in dirs {
            let node = d
                .entries
                .entry(name.clone())
                .or_insert_with(|| Node::Dir(Dir::default()));
            match node {
                Node::Dir(inner) => d = inner,
                Node::File(_) => return,
            }
        }
        d.entries.entry(last.clone()).or_insert(Node::File(len));
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'd');
        for (name, node) in &self.entries {
            bstr(out, name);
            match node {
                Node::File(len) => {
                    out.extend(format!("d0:d6:lengthi{len}e").as_bytes());
                    if *len > 0 {
                        out.extend(b"11:pieces root32:");
                        out.extend([7u8; 32]);
                    }
                    out.extend(b"ee");
                }
                Node::Dir(d) => d.encode(out),
            }
        }
        out.push(b'e');
    }
}

fn v2_torrent(tree: &Dir) -> Vec<u8> {
    let mut out = b"d4:infod9:file tree".to_vec();
    tree.encode(&mut out);
    out.extend(b"12:meta versioni2e4:name4:root12:piece lengthi16384eee");
    out
}

/// Path elements that collide after sanitizing and lowercasing, or not.
fn element() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(
            proptest::sample::select(b"aAbB.. _/\\:\xff\x01".to_vec()),
            0..6
        ),
        "[a-z]{1,12}".prop_map(String::into_bytes),
        Just(b"CON".to_vec()),
        Just(b"_____padding_file_0".to_vec()),
    ]
}

fn file() -> impl Strategy<Value = (Vec<Vec<u8>>, u64, &'static str)> {
    (
        proptest::collection::vec(element(), 1..6),
        prop_oneof![Just(0u64), 1u64..100_000],
        proptest::sample::select(vec!["", "", "", "p", "x", "h"]),
    )
}

/// Runs `check` on `cases` values of `strategy`, holding the measuring lock.
fn run_cases<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value)) {
    let _alone = alone();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let result = runner.run(&strategy, |v| {
        check(v);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_v1_torrents_stay_within_four_times_their_size() {
    let strategy = (
        proptest::collection::vec(file(), 1..400),
        proptest::collection::vec(proptest::collection::vec("[a-c]{0,6}", 0..4), 0..20),
    );
    run_cases(64, strategy, |(files, trackers)| {
        let mut extra = Vec::new();
        if !trackers.is_empty() {
            bstr(&mut extra, b"announce-list");
            extra.push(b'l');
            for tier in &trackers {
                extra.push(b'l');
                for url in tier {
                    bstr(&mut extra, url.as_bytes());
                }
                extra.push(b'e');
            }
            extra.push(b'e');
        }
        let t = v1_torrent(&files, &extra);
        let _ = assert_within_bound("random v1", &t, &LoadConfig::default());
    });
}

#[test]
fn random_v2_torrents_stay_within_four_times_their_size() {
    run_cases(64, proptest::collection::vec(file(), 1..400), |files| {
        let mut tree = Dir::default();
        for (path, len, _) in &files {
            let path: Vec<Vec<u8>> = path.iter().filter(|e| !e.is_empty()).cloned().collect();
            tree.add(&path, *len);
        }
        let t = v2_torrent(&tree);
        let _ = assert_within_bound("random v2", &t, &LoadConfig::default());
    });
}

/// A million-file-like torrent, scaled: `n` one-byte files.
fn many_files(n: usize) -> Vec<u8> {
    let files: Vec<_> = (0..n)
        .map(|i| (vec![format!("f{i:06}").into_bytes()], 1, ""))
        .collect();
    v1_torrent(&files, b"")
}

#[test]
fn hostile_shapes_stay_within_four_times_their_size() {
    let _alone = alone();
    let unlimited = LoadConfig::unlimited();
    let n = 60_000;

    let t = many_files(n);
    assert_eq!(assert_within_bound("one-byte files", &t, &unlimited), Ok(n));

    // Files with one empty path element each: the smallest v1 file entry there is.
    let files: Vec<_> = (0..n).map(|_| (vec![Vec::new()], 1, "")).collect();
    let t = v1_torrent(&files, b"");
    assert!(assert_within_bound(
        "empty names (renamed, then the budget ends)",
        &t,
        &unlimited
    )
    .is_err());

    // Deep folders of one-byte names, a file at the bottom of each.
    let files: Vec<_> = (0..2000)
        .map(|i| {
            let mut path = vec![format!("{i}").into_bytes()];
            path.extend(std::iter::repeat_n(b"a".to_vec(), 45));
            path.push(b"f".to_vec());
            (path, 1, "")
        })
        .collect();
    let t = v1_torrent(&files, b"");
    assert!(assert_within_bound("deep v1 folders", &t, &unlimited).is_ok());

    // Files with the same name in different case: half of them renamed.
    let files: Vec<_> = (0..n)
        .map(|i| {
            let name = if i % 2 == 0 { "x" } else { "X" };
            (
                vec![format!("{}", i / 2).into_bytes(), name.as_bytes().to_vec()],
                1,
                "",
            )
        })
        .collect();
    let t = v1_torrent(&files, b"");
    assert_eq!(
        assert_within_bound("case collisions", &t, &unlimited),
        Ok(n)
    );

    // Many pieces: a 16 KiB-piece torrent of a 4 GiB file.
    let mut t =
        b"d4:infod6:lengthi4294967296e4:name1:a12:piece lengthi16384e6:pieces5242880:".to_vec();
    t.extend(std::iter::repeat_n(1u8, 5_242_880));
    t.extend(b"ee");
    assert_eq!(assert_within_bound("many pieces", &t, &unlimited), Ok(1));

    // Many trackers, one per tier, and many web seeds.
    let mut extra = Vec::new();
    bstr(&mut extra, b"announce-list");
    extra.push(b'l');
    for i in 0..n {
        extra.push(b'l');
        bstr(&mut extra, format!("{i}").as_bytes());
        extra.push(b'e');
    }
    extra.push(b'e');
    let single = [(vec![b"a".to_vec()], 1, "")];
    let t = v1_torrent(&single, &extra);
    assert!(assert_within_bound("many trackers", &t, &unlimited).is_ok());
    let mut t = b"d4:info".to_vec();
    v1_info(&mut t, &single, 16384);
    bstr(&mut t, b"url-list");
    t.push(b'l');
    for i in 0..n {
        bstr(&mut t, format!("{}", i % 1000).as_bytes());
    }
    t.extend(b"ee");
    assert!(assert_within_bound("many web seeds (repeated)", &t, &unlimited).is_ok());

    // A long comment of bytes that are not UTF-8 (each becomes 3 bytes of text).
    let mut extra = Vec::new();
    bstr(&mut extra, b"comment");
    bstr(&mut extra, &vec![0xffu8; 1 << 20]);
    let t = v1_torrent(&single, &extra);
    assert!(assert_within_bound("long invalid comment", &t, &unlimited).is_ok());

    // A wide root dictionary of unknown keys, and deep nesting under one of them.
    let mut extra = Vec::new();
    for i in 0..n {
        bstr(&mut extra, format!("0{i:07}").as_bytes());
        extra.extend(b"i0e");
    }
    bstr(&mut extra, b"1deep");
    extra.extend(std::iter::repeat_n(b'l', 99));
    extra.extend(std::iter::repeat_n(b'e', 99));
    let t = v1_torrent(&single, &extra);
    assert!(assert_within_bound("wide and deep", &t, &LoadConfig::default()).is_ok());

    // v2: many files in one deep folder, and many folders.
    let mut tree = Dir::default();
    let deep: Vec<Vec<u8>> = std::iter::repeat_n(b"d".to_vec(), 40).collect();
    for i in 0..20_000 {
        let mut path = deep.clone();
        path.push(format!("{i}").into_bytes());
        tree.add(&path, 1);
    }
    let t = v2_torrent(&tree);
    let deep_outcome = assert_within_bound("v2 files in a deep folder", &t, &unlimited);
    assert_eq!(deep_outcome, Ok(40_000));
    let mut tree = Dir::default();
    for i in 0..20_000 {
        tree.add(
            &[
                format!("{i}").into_bytes(),
                b"a".to_vec(),
                b"b".to_vec(),
                b"f".to_vec(),
            ],
            0,
        );
    }
    tree.add(&[b"data".to_vec()], 1);
    let t = v2_torrent(&tree);
    assert!(assert_within_bound("v2 folders", &t, &unlimited).is_ok());
}

#[test]
fn a_loaded_torrent_holds_its_info_bytes_and_a_small_table() {
    let _alone = alone();
    // Typical: a few files, 1000 pieces.
    let files: Vec<_> = (0..5)
        .map(|i| (vec![format!("file {i}.mkv").into_bytes()], 3_276_800, ""))
        .collect();
    let mut extra = Vec::new();
    bstr(&mut extra, b"announce");
    bstr(&mut extra, b"http://tracker.example/announce");
    let t = v1_torrent(&files, &extra);
    let m = Metainfo::from_bytes(&t).unwrap();
    assert_eq!(m.info.num_pieces(), 1000);
    let info_len = m.raw_info().len();
    assert!(
        m.heap_len() < info_len + 1024,
        "{} bytes held for {info_len} bytes of info",
        m.heap_len()
    );
    let m = Metainfo::from_bytes_with(&many_files(10_000), &LoadConfig::unlimited()).unwrap();
    // The info bytes, 5 bytes of table and 16 of geometry per file.
    assert!(
        m.heap_len() <= m.raw_info().len() + 21 * 10_000 + 1024,
        "{}",
        m.heap_len()
    );
}
