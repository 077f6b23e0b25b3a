//! Deterministic test payloads and a byte-for-byte comparison of two trees.
//!
//! Data comes from xorshift64* seeded per file, so payloads are reproducible, cheap to make
//! (hundreds of MiB/s even in a debug build) and incompressible enough to be honest.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Chunk size for writing and comparing files.
const CHUNK_LEN: usize = 1 << 20;

/// xorshift64*: a fast deterministic byte source (not for anything but test data).
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        // Mix the seed so nearby seeds give unrelated streams; never zero.
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&bytes[..rest.len()]);
        }
    }
}

/// A seed derived from a name (FNV-1a), so each file of a tree has its own content.
fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `len` deterministic bytes (seeded by `seed`) to `path`, creating its parents.
pub fn write_file(path: &Path, len: u64, seed: u64) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let mut rng = XorShift::new(seed);
    let mut buf = vec![0u8; CHUNK_LEN];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK_LEN as u64) as usize;
        rng.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// Makes the single file `dir/name` of `len` bytes and returns its path.
pub fn single_file(dir: &Path, name: &str, len: u64) -> Result<PathBuf> {
    let path = dir.join(name);
    write_file(&path, len, seed_for(name))?;
    Ok(path)
}

/// The files of [`multi_file_tree`], as (relative path, length) for a piece length `p`:
/// nested folders, 0-byte files, files shorter than a piece and files spanning pieces.
pub fn tree_layout(p: u64) -> Vec<(&'static str, u64)> {
    vec![
        ("a.bin", 3 * p + 1234),
        ("empty.dat", 0),
        ("sub/b.bin", p / 3),
        ("sub/deeper/c.bin", 2 * p + 17),
        ("sub/deeper/empty-nested.dat", 0),
        ("sub/deeper/one.byte", 1),
        ("z/last.bin", p + 5),
    ]
}

/// Makes the folder `dir/name` holding [`tree_layout`] for piece length `piece_len` and
/// returns its path.
pub fn multi_file_tree(dir: &Path, name: &str, piece_len: u64) -> Result<PathBuf> {
    let root = dir.join(name);
    for (rel, len) in tree_layout(piece_len) {
        write_file(&root.join(rel), len, seed_for(rel))?;
    }
    Ok(root)
}

/// How strict [`compare_trees`] is.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompareOptions {
    /// Accept a missing 0-byte file (Transmission does not create them).
    pub missing_empty_files_ok: bool,
}

/// Checks that `actual` holds exactly the bytes of `expected`: one file, or a folder with
/// the same files (no missing, no extra, same contents).
pub fn compare_trees(expected: &Path, actual: &Path, opts: CompareOptions) -> Result<()> {
    if expected.is_file() {
        return compare_files(expected, actual);
    }
    let want = list_files(expected)?;
    let got = if actual.is_dir() {
        list_files(actual)?
    } else {
        bail!("{} is not a folder", actual.display());
    };
    for (rel, &len) in &want {
        if !got.contains_key(rel) {
            if len == 0 && opts.missing_empty_files_ok {
                continue;
            }
            bail!("missing file {} ({len} bytes)", actual.join(rel).display());
        }
        compare_files(&expected.join(rel), &actual.join(rel))?;
    }
    if let Some(extra) = got.keys().find(|rel| !want.contains_key(*rel)) {
        bail!("unexpected file {}", actual.join(extra).display());
    }
    Ok(())
}

/// All regular files under `root`, by path relative to it, with their lengths.
fn list_files(root: &Path) -> Result<BTreeMap<PathBuf, u64>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let rel = entry.path().strip_prefix(root)?.to_path_buf();
                files.insert(rel, meta.len());
            }
        }
    }
    Ok(files)
}

/// Checks two files hold the same bytes, naming the first differing offset otherwise.
fn compare_files(expected: &Path, actual: &Path) -> Result<()> {
    let open = |p: &Path| File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (mut a, mut b) = (open(expected)?, open(actual)?);
    let (len_a, len_b) = (a.metadata()?.len(), b.metadata()?.len());
    if len_a != len_b {
        bail!("{} is {len_b} bytes, expected {len_a}", actual.display());
    }
    let (mut buf_a, mut buf_b) = (vec![0u8; CHUNK_LEN], vec![0u8; CHUNK_LEN]);
    let mut offset = 0u64;
    while offset < len_a {
        let n = (len_a - offset).min(CHUNK_LEN as u64) as usize;
        a.read_exact(&mut buf_a[..n])?;
        b.read_exact(&mut buf_b[..n])?;
        if buf_a[..n] != buf_b[..n] {
            let first = buf_a[..n].iter().zip(&buf_b[..n]).position(|(x, y)| x != y);
            let at = offset + first.unwrap_or(0) as u64;
            bail!(
                "{} differs from {} at byte {at}",
                actual.display(),
                expected.display()
            );
        }
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_deterministic_and_seed_dependent() {
        let (mut a, mut b, mut c) = (XorShift::new(1), XorShift::new(1), XorShift::new(2));
        let (mut x, mut y, mut z) = ([0u8; 37], [0u8; 37], [0u8; 37]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(x, [0u8; 37]);
    }

    #[test]
    fn single_file_has_the_requested_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = single_file(dir.path(), "f.bin", 3 * MIB + 5).unwrap();
        assert_eq!(fs::metadata(path).unwrap().len(), 3 * MIB + 5);
    }

    #[test]
    fn identical_trees_compare_equal() {
        let dir = tempfile::tempdir().unwrap();
        let a = multi_file_tree(&dir.path().join("1"), "t", 16384).unwrap();
        let b = multi_file_tree(&dir.path().join("2"), "t", 16384).unwrap();
        compare_trees(&a, &b, CompareOptions::default()).unwrap();
    }

    /// Makes two equal trees, lets `spoil` change the second, and returns the error.
    fn spoiled(spoil: impl FnOnce(&Path), opts: CompareOptions) -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let a = multi_file_tree(&dir.path().join("1"), "t", 16384).unwrap();
        let b = multi_file_tree(&dir.path().join("2"), "t", 16384).unwrap();
        spoil(&b);
        compare_trees(&a, &b, opts)
    }

    #[test]
    fn flipped_byte_is_found_at_its_offset() {
        let err = spoiled(
            |b| {
                let path = b.join("sub/deeper/c.bin");
                let mut data = fs::read(&path).unwrap();
                data[20000] ^= 1;
                fs::write(&path, data).unwrap();
            },
            CompareOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at byte 20000"), "{err}");
    }

    #[test]
    fn missing_extra_and_truncated_files_are_errors() {
        let strict = CompareOptions::default();
        let err = spoiled(|b| fs::remove_file(b.join("z/last.bin")).unwrap(), strict);
        assert!(err.unwrap_err().to_string().contains("missing file"));
        let err = spoiled(|b| fs::write(b.join("sub/extra"), b"x").unwrap(), strict);
        assert!(err.unwrap_err().to_string().contains("unexpected file"));
        let err = spoiled(|b| fs::write(b.join("a.bin"), b"short").unwrap(), strict);
        assert!(err.unwrap_err().to_string().contains("is 5 bytes"));
    }

    #[test]
    fn missing_empty_file_is_ok_only_when_allowed() {
        let remove = |b: &Path| fs::remove_file(b.join("sub/deeper/empty-nested.dat")).unwrap();
        assert!(spoiled(remove, CompareOptions::default()).is_err());
        let lenient = CompareOptions {
            missing_empty_files_ok: true,
        };
        spoiled(remove, lenient).unwrap();
        // Lenience covers only empty files.
        assert!(spoiled(|b| fs::remove_file(b.join("a.bin")).unwrap(), lenient).is_err());
    }

    #[test]
    fn tree_has_short_and_spanning_files() {
        let p = 16384;
        let layout = tree_layout(p);
        assert!(layout.iter().any(|&(_, len)| len == 0));
        assert!(layout.iter().any(|&(_, len)| len > 0 && len < p));
        assert!(layout.iter().any(|&(_, len)| len > 2 * p));
        let total: u64 = layout.iter().map(|&(_, len)| len).sum();
        assert_ne!(total % p, 0, "the last piece should be short");
    }
}
