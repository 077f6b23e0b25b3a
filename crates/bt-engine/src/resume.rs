//! Resume state: which pieces of a torrent were verified, and what its files looked like then.
//!
//! [`ResumeState`] is saved as a small bencoded file, atomically (temporary file in the same
//! folder, fsync, rename, fsync of the folder), so a crash leaves either the old or the new
//! state, never a torn one. At the next start the state is trusted only if every file still
//! has the recorded size and modification time; otherwise the caller checks the data again
//! (see `TorrentStorage::check_existing`). A malformed file is an error, never a panic.
//!
//! The trust rule is safe because a verified piece is never written again: writes after the
//! state was taken touch only pieces it does not claim.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bt_bencode::{DecodeOptions, Dict, Value};
use bt_meta::InfoHash;

use crate::storage::{FileStamp, MTime};

/// Format version written in the `version` key.
const VERSION: i64 = 1;

/// Largest resume file accepted, in bytes (a 64 GiB torrent of 16 KiB pieces needs 512 KiB).
pub const MAX_RESUME_FILE_LEN: u64 = 64 << 20;

/// What is known about one torrent's data when it was last saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeState {
    /// The torrent this state belongs to.
    pub info_hash: InfoHash,
    /// One flag per piece: verified against its hash.
    pub pieces: Vec<bool>,
    /// One entry per file of the torrent: size and modification time, `None` for a file
    /// that did not exist (or a pad file).
    pub files: Vec<Option<FileStamp>>,
}

/// A resume file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Reading failed (`ErrorKind::NotFound` when there is no resume file yet).
    #[error("cannot read resume file {}: {source}", path.display())]
    Read {
        /// The resume file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Writing, syncing or renaming failed; the previous state is still in place.
    #[error("cannot write resume file {}: {source}", path.display())]
    Write {
        /// The resume file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is larger than [`MAX_RESUME_FILE_LEN`].
    #[error("resume file {} is too large: {len} bytes (limit {MAX_RESUME_FILE_LEN})", path.display())]
    TooLarge {
        /// The resume file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The contents are not a resume state.
    #[error("resume file {} is malformed: {source}", path.display())]
    Malformed {
        /// The resume file.
        path: PathBuf,
        /// What is wrong with it.
        source: ResumeFormatError,
    },
}

impl ResumeError {
    /// Whether this only means there was no resume file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ResumeError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// What is wrong with the bytes of a resume file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResumeFormatError {
    /// Not bencode.
    #[error(transparent)]
    Bencode(#[from] bt_bencode::Error),
    /// Bencode, but a key is missing or holds the wrong thing.
    #[error("bad {key:?}: {problem}")]
    Field {
        /// The offending key.
        key: &'static str,
        /// What is wrong with its value.
        problem: String,
    },
}

fn bad(key: &'static str, problem: impl Into<String>) -> ResumeFormatError {
    ResumeFormatError::Field {
        key,
        problem: problem.into(),
    }
}

impl ResumeState {
    /// Encodes the state as a bencoded dictionary.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Dict::new();
        d.insert(&b"version"[..], Value::Int(VERSION));
        d.insert(&b"info-hash"[..], Value::bytes(self.info_hash.as_bytes()));
        d.insert(&b"piece-count"[..], int(self.pieces.len() as u64));
        d.insert(&b"pieces"[..], Value::from(pack_bits(&self.pieces)));
        let files = self
            .files
            .iter()
            .map(|f| {
                let mut e = Dict::new();
                if let Some(s) = f {
                    e.insert(&b"length"[..], int(s.len));
                    e.insert(&b"mtime"[..], Value::Int(s.mtime.secs));
                    e.insert(&b"mtime-ns"[..], Value::Int(i64::from(s.mtime.nanos)));
                }
                Value::Dict(e)
            })
            .collect();
        d.insert(&b"files"[..], Value::List(files));
        Value::Dict(d).encode()
    }

    /// Decodes what [`encode`](Self::encode) wrote, checking every field.
    pub fn decode(bytes: &[u8]) -> Result<Self, ResumeFormatError> {
        let opts = DecodeOptions {
            max_input_len: MAX_RESUME_FILE_LEN as usize,
            ..DecodeOptions::strict()
        };
        let root = opts.decode(bytes)?;
        let d = root.as_dict().ok_or_else(|| {
            bad(
                "",
                format!("expected a dictionary, found a {}", root.type_name()),
            )
        })?;
        let version = get_int(d, "version")?;
        if version != VERSION {
            return Err(bad("version", format!("unsupported version {version}")));
        }
        let ih = get(d, "info-hash")?
            .as_bytes()
            .and_then(|b| <[u8; 20]>::try_from(b).ok())
            .ok_or_else(|| bad("info-hash", "expected 20 bytes"))?;
        let count = get_int(d, "piece-count")?;
        let packed = get(d, "pieces")?
            .as_bytes()
            .ok_or_else(|| bad("pieces", "expected a byte string"))?;
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n.div_ceil(8) == packed.len())
            .ok_or_else(|| {
                bad(
                    "piece-count",
                    format!("{count} does not fit {} bytes of bitfield", packed.len()),
                )
            })?;
        let pieces =
            unpack_bits(packed, count).ok_or_else(|| bad("pieces", "spare bits are set"))?;
        let list = get(d, "files")?
            .as_list()
            .ok_or_else(|| bad("files", "expected a list"))?;
        let files = list
            .iter()
            .enumerate()
            .map(|(i, v)| file_stamp(i, v))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            info_hash: InfoHash(ih),
            pieces,
            files,
        })
    }

    /// Writes the state to `path` atomically: a temporary file beside it is written and
    /// renamed over `path`. A process crash at any point leaves the old state or the new
    /// one (plus, at worst, the temporary file, which [`load`](Self::load) never reads and
    /// the next save overwrites). The file is not flushed to the disk platter (thousands
    /// of torrents would cost thousands of `fsync`s): after a power cut it may be old,
    /// or unreadable and then ignored. Neither claims data that is not there, because
    /// the data is flushed before the state naming it is written
    /// ([`TorrentStorage::resume_state`](crate::storage::TorrentStorage::resume_state));
    /// at worst the files are hashed again, and nothing verified is fetched again.
    pub fn save(&self, path: &Path) -> Result<(), ResumeError> {
        let werr = |source| ResumeError::Write {
            path: path.to_owned(),
            source,
        };
        let tmp = temp_path(path);
        let bytes = self.encode();
        let written = (|| {
            // A fresh file: whatever is at the temporary path (a torn earlier attempt, or
            // a symlink someone left there) is removed, never written through.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(&bytes)
        })();
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(werr(e));
        }
        Ok(())
    }

    /// Reads and decodes the state saved at `path`.
    pub fn load(path: &Path) -> Result<Self, ResumeError> {
        let rerr = |source| ResumeError::Read {
            path: path.to_owned(),
            source,
        };
        let f = File::open(path).map_err(rerr)?;
        let len = f.metadata().map_err(rerr)?.len();
        if len > MAX_RESUME_FILE_LEN {
            return Err(ResumeError::TooLarge {
                path: path.to_owned(),
                len,
            });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may grow after the length check: never read more than the limit + 1.
        f.take(MAX_RESUME_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(rerr)?;
        Self::decode(&bytes).map_err(|source| ResumeError::Malformed {
            path: path.to_owned(),
            source,
        })
    }

    /// Whether the files on disk (`current`, one entry per file as from
    /// `TorrentStorage::file_stamps`) have exactly the sizes and modification times recorded,
    /// so the recorded pieces can be trusted without hashing them again.
    ///
    /// A state that claims pieces while recording no file at all is never trusted: a
    /// verified piece lies in a file that existed when the state was saved, so such a state
    /// was not written by us (for example, a torrent's own file planted at this path).
    pub fn matches_files(&self, current: &[Option<FileStamp>]) -> bool {
        let claims = self.pieces.iter().any(|&p| p);
        let no_files = self.files.iter().all(Option::is_none);
        self.files == current && !(claims && no_files)
    }
}

fn int(n: u64) -> Value<'static> {
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn get<'d, 'a>(d: &'d Dict<'a>, key: &'static str) -> Result<&'d Value<'a>, ResumeFormatError> {
    d.get(key.as_bytes()).ok_or_else(|| bad(key, "missing"))
}

fn get_int(d: &Dict<'_>, key: &'static str) -> Result<i64, ResumeFormatError> {
    get(d, key)?
        .as_int()
        .ok_or_else(|| bad(key, "expected an integer"))
}

fn file_stamp(i: usize, v: &Value<'_>) -> Result<Option<FileStamp>, ResumeFormatError> {
    let d = v
        .as_dict()
        .ok_or_else(|| bad("files", format!("entry {i} is not a dictionary")))?;
    if d.is_empty() {
        return Ok(None);
    }
    let field = |key: &'static str| {
        d.get(key.as_bytes())
            .and_then(Value::as_int)
            .ok_or_else(|| bad("files", format!("entry {i} has no integer {key:?}")))
    };
    let len = u64::try_from(field("length")?)
        .map_err(|_| bad("files", format!("entry {i} has a negative length")))?;
    let secs = field("mtime")?;
    let nanos = u32::try_from(field("mtime-ns")?)
        .ok()
        .filter(|&n| n < 1_000_000_000)
        .ok_or_else(|| bad("files", format!("entry {i} has mtime-ns out of range")))?;
    Ok(Some(FileStamp {
        len,
        mtime: MTime { secs, nanos },
    }))
}

/// Packs flags into bytes, piece 0 in the high bit of the first byte (as on the wire).
fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
        out[i / 8] |= 0x80 >> (i % 8); // ok: `out` has a byte for every 8 bits
    }
    out
}

/// Unpacks `n` flags; `None` if a spare bit past `n` is set. `bytes.len()` must be `ceil(n/8)`.
fn unpack_bits(bytes: &[u8], n: usize) -> Option<Vec<bool>> {
    let bits: Vec<bool> = (0..bytes.len() * 8)
        .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0) // ok: i < 8 * len
        .collect();
    if bits.get(n..).is_some_and(|spare| spare.iter().any(|&b| b)) {
        return None;
    }
    Some(bits.into_iter().take(n).collect())
}

/// The temporary file beside `path` that [`ResumeState::save`] writes first.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64, secs: i64, nanos: u32) -> Option<FileStamp> {
        Some(FileStamp {
            len,
            mtime: MTime { secs, nanos },
        })
    }

    fn sample() -> ResumeState {
        ResumeState {
            info_hash: InfoHash([0xab; 20]),
            pieces: vec![
                true, false, true, true, false, false, false, false, true, true,
            ],
            files: vec![
                stamp(10, 1_700_000_000, 123),
                None,
                stamp(0, -5, 999_999_999),
            ],
        }
    }

    #[test]
    fn bits_round_trip() {
        for n in 0usize..20 {
            let bits: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
            let packed = pack_bits(&bits);
            assert_eq!(packed.len(), n.div_ceil(8));
            assert_eq!(unpack_bits(&packed, n).unwrap(), bits);
        }
        assert_eq!(
            pack_bits(&[true, false, false, false, false, false, false, false, true]),
            [0x80, 0x80]
        );
        assert_eq!(unpack_bits(&[0x01], 7), None);
    }

    #[test]
    fn encode_decode_round_trip() {
        let s = sample();
        assert_eq!(ResumeState::decode(&s.encode()).unwrap(), s);
        let empty = ResumeState {
            info_hash: InfoHash::default(),
            pieces: vec![],
            files: vec![],
        };
        assert_eq!(ResumeState::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn save_load_round_trip_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.resume");
        let s = sample();
        s.save(&path).unwrap();
        assert_eq!(ResumeState::load(&path).unwrap(), s);
        let mut s2 = s.clone();
        s2.pieces[1] = true;
        s2.save(&path).unwrap();
        assert_eq!(ResumeState::load(&path).unwrap(), s2);
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["t.resume"]);
    }

    #[test]
    fn leftover_temp_file_is_ignored_and_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.resume");
        let s = sample();
        s.save(&path).unwrap();
        // A crash in the middle of the next save leaves a torn temporary file.
        fs::write(temp_path(&path), b"d7:versioni1e4:pie").unwrap();
        assert_eq!(ResumeState::load(&path).unwrap(), s);
        s.save(&path).unwrap();
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn symlink_at_the_temp_path_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.resume");
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, temp_path(&path)).unwrap();
        sample().save(&path).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(ResumeState::load(&path).unwrap(), sample());
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn missing_file_is_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ResumeState::load(&tmp.path().join("none")).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn save_into_missing_folder_fails_cleanly() {
        let tmp = tempfile::tempdir().unwrap();
        let err = sample()
            .save(&tmp.path().join("no/such/dir/t.resume"))
            .unwrap_err();
        assert!(matches!(err, ResumeError::Write { .. }), "{err}");
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.resume");
        let good = sample().encode();
        for cut in 0..good.len() {
            fs::write(&path, &good[..cut]).unwrap();
            let err = ResumeState::load(&path).unwrap_err();
            assert!(
                matches!(err, ResumeError::Malformed { .. }),
                "cut at {cut}: {err}"
            );
        }
        fs::write(&path, [0xffu8; 64]).unwrap();
        assert!(matches!(
            ResumeState::load(&path),
            Err(ResumeError::Malformed { .. })
        ));
    }

    fn check_bad(mutate: impl FnOnce(&mut Dict<'static>), key: &str) {
        let bytes = sample().encode();
        let mut d = bt_bencode::decode(&bytes)
            .unwrap()
            .into_owned()
            .as_dict()
            .unwrap()
            .clone();
        mutate(&mut d);
        match ResumeState::decode(&Value::Dict(d).encode()) {
            Err(ResumeFormatError::Field { key: k, .. }) => assert_eq!(k, key),
            other => panic!("expected a bad {key:?}, got {other:?}"),
        }
    }

    #[test]
    fn invalid_fields_are_errors() {
        check_bad(
            |d| {
                d.insert(&b"version"[..], Value::Int(2));
            },
            "version",
        );
        check_bad(
            |d| {
                d.remove(b"version");
            },
            "version",
        );
        check_bad(
            |d| {
                d.insert(&b"info-hash"[..], Value::owned_bytes(vec![1; 19]));
            },
            "info-hash",
        );
        check_bad(
            |d| {
                d.insert(&b"piece-count"[..], Value::Int(17));
            },
            "piece-count",
        );
        check_bad(
            |d| {
                d.insert(&b"piece-count"[..], Value::Int(-1));
            },
            "piece-count",
        );
        check_bad(
            |d| {
                d.insert(&b"pieces"[..], Value::owned_bytes(vec![0xff, 0xff]));
            },
            "pieces",
        );
        check_bad(
            |d| {
                d.insert(&b"pieces"[..], Value::Int(0));
            },
            "pieces",
        );
        check_bad(
            |d| {
                d.insert(&b"files"[..], Value::Int(0));
            },
            "files",
        );
        check_bad(
            |d| {
                d.insert(&b"files"[..], Value::List(vec![Value::Int(1)]));
            },
            "files",
        );
        let stamp_with = |k: &'static [u8], v: i64| {
            let mut e = Dict::new();
            e.insert(&b"length"[..], Value::Int(1));
            e.insert(&b"mtime"[..], Value::Int(1));
            e.insert(&b"mtime-ns"[..], Value::Int(1));
            e.insert(k, Value::Int(v));
            Value::List(vec![Value::Dict(e)])
        };
        check_bad(
            |d| {
                d.insert(&b"files"[..], stamp_with(b"length", -1));
            },
            "files",
        );
        check_bad(
            |d| {
                d.insert(&b"files"[..], stamp_with(b"mtime-ns", 1_000_000_000));
            },
            "files",
        );
        check_bad(
            |d| {
                d.insert(&b"files"[..], stamp_with(b"mtime-ns", -1));
            },
            "files",
        );
    }

    #[test]
    fn matches_files_only_on_exact_size_and_mtime() {
        let s = sample();
        assert!(s.matches_files(&s.files));
        let mut touched = s.files.clone();
        touched[0] = stamp(10, 1_700_000_000, 124);
        assert!(!s.matches_files(&touched));
        let mut resized = s.files.clone();
        resized[0] = stamp(11, 1_700_000_000, 123);
        assert!(!s.matches_files(&resized));
        let mut appeared = s.files.clone();
        appeared[1] = stamp(0, 0, 0);
        assert!(!s.matches_files(&appeared));
        assert!(!s.matches_files(&s.files[..2]));
    }

    #[test]
    fn claims_without_any_file_are_never_trusted() {
        let mut s = sample();
        s.files = vec![None, None, None];
        assert!(!s.matches_files(&s.files));
        s.pieces.fill(false);
        assert!(s.matches_files(&s.files));
    }
}
