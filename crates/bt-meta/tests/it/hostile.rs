//! Mutated corpus inputs: never a panic. Deterministic (fixed seed) and bounded, so it
//! runs in every `cargo test`; the fuzz targets (`fuzz/fuzz_targets/{metainfo,magnet}.rs`)
//! go further.

use bt_meta::{Magnet, Metainfo};

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"i-1e",
    b"i0e",
    b"0:",
    b"le",
    b"de",
    b"i9223372036854775807e",
    b"4:info",
    b"5:files",
    b"6:length",
    b"4:path",
    b"12:piece length",
    b"6:pieces",
    b"9:file tree",
    b"1:",
    b"..",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            1 => out.truncate(at),
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
            3 if !out.is_empty() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            _ => {
                let digit = b'0' + rng.below(10) as u8;
                out.insert(at, digit);
            }
        }
    }
    out
}

#[test]
fn mutated_torrents_never_panic() {
    let dir = crate::fixtures().join("torrents");
    let mut rng = Rng(0x0005_eed0_fb17);
    let mut parsed = 0;
    for sub in ["valid", "invalid"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            if bytes.len() > 16_384 {
                continue;
            }
            for cut in (0..bytes.len()).step_by(97) {
                let _ = Metainfo::from_bytes(&bytes[..cut]);
            }
            for _ in 0..300 {
                let m = mutate(&mut rng, &bytes);
                if let Ok(meta) = Metainfo::from_bytes(&m) {
                    parsed += 1;
                    let base = std::path::Path::new("/base");
                    assert!(meta
                        .info
                        .files()
                        .iter()
                        .all(|f| f.path_under(base).starts_with(base)));
                }
            }
        }
    }
    assert!(parsed > 0, "some mutations should still parse");
}

#[test]
fn mutated_magnets_never_panic_and_round_trip() {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate::fixtures().join("magnet/vectors.json")).unwrap(),
    )
    .unwrap();
    let mut rng = Rng(42);
    for v in doc["vectors"].as_array().unwrap() {
        let uri = v["uri"].as_str().unwrap().as_bytes();
        for _ in 0..200 {
            let m = mutate(&mut rng, uri);
            let Ok(text) = std::str::from_utf8(&m) else {
                continue;
            };
            if let Ok(magnet) = Magnet::parse(text) {
                assert_eq!(Magnet::parse(&magnet.to_uri()).unwrap(), magnet, "{text}");
            }
        }
    }
}
