//! `bt-reliability-*` scenarios: crash safety and hostile files, with real processes.
//!
//! - five SIGKILLs of a 256 MiB `bt download` from a throttled libtorrent seeder, each
//!   followed by a restart: the copy ends byte-identical and each kill costs at most the
//!   pieces bt's request pipeline can have in flight (counted from the seeder's upload
//!   counter);
//! - a byte changed in a completed download: `bt verify` names the piece and the next
//!   `bt download` fetches that piece alone again, whether or not the resume state still
//!   matches the files;
//! - a real tmpfs too small for the payload (mounted in a private user + mount namespace):
//!   `bt download` stops with a "disk full" error, the intact data stays, and it completes
//!   once the tmpfs has room;
//! - torrents whose paths try to leave the download folder (`..`, absolute paths,
//!   backslashes, drive letters, empty and `.` elements): downloaded from `bt seed` and
//!   from libtorrent, nothing appears outside the download folder.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use bt_bencode::{Dict, Value};
use sha1::{Digest, Sha1};

use super::harness::{CHECK_TIMEOUT, TRANSFER_TIMEOUT};
use super::torrents::{piece_len_at, Shape, TestTorrent};
use super::{Ctx, Need, Scenario};
use crate::payload::{self, CompareOptions, XorShift, MIB};
use crate::peers::libtorrent::{self, LtSession, SessionOptions, TorrentInfo};
use crate::process::Proc;

/// The crash-safety and hostile-path scenarios.
pub static RELIABILITY_SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "bt-reliability-five-sigkills-then-byte-identical",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: five_sigkills,
    },
    Scenario {
        name: "bt-reliability-changed-byte-found-and-repaired",
        needs: &[Need::Libtorrent, Need::Bt("download"), Need::Bt("verify")],
        run: changed_byte_repaired,
    },
    Scenario {
        name: "bt-reliability-disk-full-on-tmpfs-then-space",
        needs: &[Need::Libtorrent, Need::Bt("download")],
        run: disk_full_on_tmpfs,
    },
    Scenario {
        name: "bt-reliability-hostile-paths-stay-in-the-download-folder",
        needs: &[
            Need::Libtorrent,
            Need::Bt("download"),
            Need::Bt("seed"),
            Need::Bt("info"),
        ],
        run: hostile_paths_stay_inside,
    },
];

/// Time allowed for `bt verify` on a payload of a few hundred MiB.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------
// Five SIGKILLs

/// Payload of the SIGKILL scenario: 256 MiB and a bit, so the last piece is short.
const BIG_LEN: u64 = 256 * MIB + 12_345;
/// Its piece length.
const BIG_PIECE_LEN: u64 = 256 * 1024;
/// The seeder's upload limit: about 21 s for the payload, so five kills land in a
/// transfer that is still going.
const BIG_RATE: u64 = 12 * MIB;
/// Kills per run.
const KILLS: usize = 5;

/// bt's request pipeline, from bt-engine's `torrent.rs`: at most `MAX_QUEUE_DEPTH` (192)
/// blocks requested from one peer, plus at most `MAX_DISK_INFLIGHT` (128) blocks received
/// and queued for the disk but not yet written, which one peer event of up to 64 messages
/// admitted just below that limit can overshoot by 64. 16 KiB blocks.
const PIPELINE_BLOCKS: u64 = 192 + 128 + 64;
/// Block length bt requests.
const BLOCK_LEN: u64 = 16 * 1024;

/// The most bytes one kill may cost: what the seeder had sent and bt had not yet put on
/// disk as part of a complete piece. The seeder sends only blocks bt requested, and a
/// block it sent is either still requested (in the seeder's socket buffer, on the wire,
/// in bt's socket buffer or reader: at most 192 blocks), received and queued for the
/// disk (at most 192 blocks), or written. So at most 384 blocks are in transit, and the
/// written-but-lost blocks belong to pieces that are still missing some of those 384: the
/// picker requests a piece's blocks together (partial pieces first), so those 384 blocks
/// span at most `ceil(384 / blocks_per_piece) + 1` pieces, and every lost byte lies in one
/// of them. With 256 KiB pieces: 25 pieces, 6.25 MiB. (A bt that fetched again pieces it
/// had verified on disk would overshoot it by tens of MiB: kills are ~40 MiB apart.)
fn in_flight_bound(piece_len: u64) -> u64 {
    let blocks_per_piece = piece_len.div_ceil(BLOCK_LEN);
    (PIPELINE_BLOCKS.div_ceil(blocks_per_piece) + 1) * piece_len
}

/// `n` kill points as fractions of the payload: one random point in each of `n` equal
/// slots of 8%..92%, away from the slot edges, so they are sorted, distinct and at least
/// a few percent apart.
fn kill_fractions(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = XorShift::new(seed);
    let (lo, hi) = (0.08, 0.92);
    let slot = (hi - lo) / n as f64;
    (0..n)
        .map(|i| {
            let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            lo + slot * (i as f64 + 0.1 + 0.8 * r)
        })
        .collect()
}

/// A single-file payload of `len` bytes with `piece_len` pieces, torrent made by
/// libtorrent.
fn single_file_torrent(ctx: &Ctx, name: &str, len: u64, piece_len: u64) -> Result<TestTorrent> {
    let sb = &ctx.sandbox;
    let data_dir = sb.mkdir("seed-data")?;
    let content = payload::single_file(&data_dir, name, len)?;
    let torrent = sb.path().join(format!("{name}.torrent"));
    let info = libtorrent::create(&content, &torrent, piece_len, &[])?;
    ensure!(
        info.total_size == len && info.piece_length == piece_len,
        "libtorrent made a torrent of {} bytes / {} per piece, expected {len} / {piece_len}",
        info.total_size,
        info.piece_length
    );
    Ok(TestTorrent {
        data_dir,
        content,
        torrent,
        info,
    })
}

/// Hashes pieces of one file: argv = file, piece length, piece indices; prints
/// `<index> <sha1 hex>` per piece (`<index> short` for a piece past the end). Python's
/// hashlib, because SHA-1 in xtask's unoptimised build takes ~30 s for 256 MiB.
const PIECE_HASHER: &str = r#"
import hashlib, sys
path, plen = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    for arg in sys.argv[3:]:
        i = int(arg)
        f.seek(i * plen)
        data = f.read(plen)
        print(i, hashlib.sha1(data).hexdigest() if data else "short")
"#;

/// Which pieces of a single-file download are intact: re-hashes only the pieces not
/// already known good (`known`), so five checks of 256 MiB cost one pass. A piece whose
/// bytes are short gets the hash of what is there, which does not match.
fn update_verified(file: &Path, info: &TorrentInfo, known: &mut [bool]) -> Result<()> {
    if !file.exists() {
        return Ok(());
    }
    let todo: Vec<String> = (0..known.len())
        .filter(|&i| !known[i])
        .map(|i| i.to_string())
        .collect();
    if todo.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(libtorrent::PYTHON);
    cmd.args(["-c", PIECE_HASHER])
        .arg(file)
        .arg(info.piece_length.to_string())
        .args(&todo);
    let out = crate::process::run("piece hasher", &cmd, VERIFY_TIMEOUT)?;
    let mut answered = 0;
    for line in out.lines() {
        let (index, hash) = line
            .split_once(' ')
            .with_context(|| format!("piece hasher printed {line:?}"))?;
        let index: usize = index.parse()?;
        let expected = info.piece_hashes.get(index).context("piece index")?;
        let good = known.get_mut(index).context("piece index")?;
        *good = hash == expected;
        answered += 1;
    }
    ensure!(
        answered == todo.len(),
        "piece hasher answered {answered} of {} pieces",
        todo.len()
    );
    Ok(())
}

/// Bytes of the pieces marked good.
fn verified_bytes(info: &TorrentInfo, good: &[bool]) -> u64 {
    (0..good.len())
        .filter(|&i| good[i])
        .map(|i| piece_len_at(info, i))
        .sum()
}

/// A 256 MiB `bt download` from a throttled libtorrent seeder is SIGKILLed at five random
/// points and restarted after each; it ends byte-identical, and the bytes each kill cost
/// (sent by the seeder before the kill, not in a piece intact on disk after it) stay
/// within [`in_flight_bound`].
fn five_sigkills(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let started = std::time::Instant::now();
    let t = single_file_torrent(ctx, "big.bin", BIG_LEN, BIG_PIECE_LEN)?;
    let size = t.info.total_size;
    let opts = SessionOptions {
        upload_limit: BIG_RATE,
        ..SessionOptions::default()
    };
    let mut seeder = LtSession::seed(sb, "lt-seed", &t.torrent, &t.data_dir, &opts)?;
    seeder.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let file = out.join(&t.info.name);
    let setup = started.elapsed();
    let mut hashing = Duration::ZERO;

    let seed = std::env::var("BT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let fractions = kill_fractions(seed, KILLS);
    let bound = in_flight_bound(t.info.piece_length);
    ctx.note(format!(
        "BT_KILL_SEED={seed}; bound {:.2} MiB per kill",
        bound as f64 / MIB as f64
    ));

    let mut good = vec![false; t.info.piece_hashes.len()];
    // Seeder's upload counter and bytes intact on disk at the previous kill.
    let (mut sent_before, mut have_before) = (0u64, 0u64);
    let mut worst = 0u64;
    for (k, &fraction) in fractions.iter().enumerate() {
        let mut bt = ctx.bt.download(
            sb,
            &format!("bt-download-{}", k + 1),
            &t.torrent,
            &out,
            sb.addr()?,
            &[seeder.addr()],
        )?;
        let target = (fraction * size as f64) as u64;
        seeder
            .wait_for(
                TRANSFER_TIMEOUT,
                &format!("{:.0}% of the payload uploaded", fraction * 100.0),
                |s| s.total_payload_upload >= target,
            )
            .with_context(|| format!("before kill {}: {}", k + 1, bt.tail()))?;
        let status = bt.kill()?;
        ensure!(
            !status.success(),
            "bt finished before kill {} at {:.0}%",
            k + 1,
            fraction * 100.0
        );
        let sent = settled_upload(&mut seeder)?;
        let hash_started = std::time::Instant::now();
        update_verified(&file, &t.info, &mut good)?;
        hashing += hash_started.elapsed();
        let have = verified_bytes(&t.info, &good);
        let pieces = good.iter().filter(|&&g| g).count();
        // Whatever resume state the kill left must claim only intact pieces.
        let claimed = claimed_pieces(&out, &t.info.info_hash, good.len())?;
        let claim_note = match &claimed {
            Some(c) => {
                let bad: Vec<usize> = (0..c.len()).filter(|&i| c[i] && !good[i]).collect();
                ensure!(
                    bad.is_empty(),
                    "kill {}: the resume state claims pieces that are not intact: {bad:?}",
                    k + 1
                );
                format!("resume state claims {}", c.iter().filter(|&&x| x).count())
            }
            None => "no resume state yet".to_owned(),
        };
        ensure!(
            have >= have_before,
            "kill {}: {have} bytes intact on disk, {have_before} at the previous kill",
            k + 1
        );
        // Sent since the last kill but not part of a piece intact now: lost at this kill,
        // to be fetched again after the restart.
        let lost = (sent - sent_before).saturating_sub(have - have_before);
        worst = worst.max(lost);
        ctx.note(format!(
            "kill {} at {:.0}%: {pieces}/{} pieces verified, {} bytes missing, {lost} bytes \
             to refetch, {claim_note}",
            k + 1,
            fraction * 100.0,
            good.len(),
            size - have
        ));
        ensure!(
            lost <= bound,
            "kill {} at {:.0}%: the seeder sent {} bytes since the last kill but only {} \
             bytes of new pieces are intact on disk: {lost} bytes lost, more than the {bound} \
             bytes bt's request pipeline can have in flight",
            k + 1,
            fraction * 100.0,
            sent - sent_before,
            have - have_before
        );
        sent_before = sent;
        have_before = have;
    }

    let mut last = ctx.bt.download(
        sb,
        "bt-download-final",
        &t.torrent,
        &out,
        sb.addr()?,
        &[seeder.addr()],
    )?;
    last.wait_success(TRANSFER_TIMEOUT)?;
    t.check_copy(&out, CompareOptions::default())?;
    let sent = seeder.fresh_status()?.total_payload_upload;
    let extra = (sent - sent_before).saturating_sub(size - have_before);
    ctx.note(format!(
        "final run: {} bytes sent for {} missing; {:.3} copies sent in all; setup {:.1}s, \
         hashing kills {:.1}s",
        sent - sent_before,
        size - have_before,
        sent as f64 / size as f64,
        setup.as_secs_f64(),
        hashing.as_secs_f64()
    ));
    ensure!(
        extra <= bound,
        "after the last restart the seeder sent {} bytes for {} missing",
        sent - sent_before,
        size - have_before
    );
    ensure!(
        sent >= size,
        "the seeder reports {sent} bytes sent, less than one copy ({size}); worst kill cost \
         {worst} bytes"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A changed byte

/// What `bt verify` said: its exit status and output.
struct Verdict {
    ok: bool,
    output: String,
}

/// Runs `bt verify <torrent> <dir>` and returns its verdict with everything it printed.
fn bt_verify(ctx: &Ctx, name: &str, torrent: &Path, dir: &Path) -> Result<Verdict> {
    let mut cmd = Command::new(ctx.bt.path());
    cmd.arg("verify").arg(torrent).arg(dir);
    let mut proc = ctx.sandbox.spawn(name, &cmd)?;
    let status = proc.wait(VERIFY_TIMEOUT)?;
    let output = read_log(ctx, name, &mut proc)?;
    Ok(Verdict {
        ok: status.success(),
        output,
    })
}

/// The log of the sandbox process `name` (stdout and stderr), once its output is in.
fn read_log(ctx: &Ctx, name: &str, proc: &mut Proc) -> Result<String> {
    let path = ctx.sandbox.path().join("logs").join(format!("{name}.log"));
    // The reader threads may still be appending the last lines.
    let _ = proc.read_lines_until(Duration::from_secs(5), "end of output", |_| Ok(None::<()>));
    fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// Flips one byte of `file` at `offset` (the file keeps its size).
fn flip_byte(file: &Path, offset: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, offset)?;
    byte[0] ^= 0x5a;
    f.write_all_at(&byte, offset)?;
    f.sync_all()?;
    Ok(())
}

/// Sets the modification time of `file`.
fn set_mtime(file: &Path, mtime: SystemTime) -> Result<()> {
    File::options()
        .write(true)
        .open(file)?
        .set_modified(mtime)
        .with_context(|| format!("cannot set the mtime of {}", file.display()))
}

/// The seeder's payload counter once no peer is connected (a `bt download` that
/// exited or was killed). Status lines queued before now are skipped first: an old one
/// may show no peer from before the download connected.
fn settled_upload(seeder: &mut LtSession) -> Result<u64> {
    seeder.latest();
    Ok(seeder
        .wait_for(Duration::from_secs(30), "no peer connected", |s| {
            s.num_peers == 0
        })?
        .total_payload_upload)
}

/// `bt download` into `out` from `seeder`, to completion; returns the payload bytes the
/// seeder sent for it.
fn download_counted(
    ctx: &Ctx,
    name: &str,
    t: &TestTorrent,
    out: &Path,
    seeder: &mut LtSession,
) -> Result<u64> {
    let before = settled_upload(seeder)?;
    let mut bt = ctx.bt.download(
        &ctx.sandbox,
        name,
        &t.torrent,
        out,
        ctx.sandbox.addr()?,
        &[seeder.addr()],
    )?;
    bt.wait_success(TRANSFER_TIMEOUT)?;
    Ok(settled_upload(seeder)? - before)
}

/// Whether `line` of `bt verify` output lists `piece` among the bad ones
/// (`  <file>: 1 of 257 pieces bad: 3, 100-101`).
fn names_bad_piece(output: &str, piece: u64) -> bool {
    output.lines().any(|line| {
        let Some((_, list)) = line.split_once("pieces bad:") else {
            return false;
        };
        list.split(',').any(|range| {
            let range = range.trim();
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a <= piece && piece <= b)
        })
    })
}

/// `bt verify` of `out` fails and names `piece`.
fn verify_finds_bad_piece(
    ctx: &Ctx,
    name: &str,
    torrent: &Path,
    out: &Path,
    piece: u64,
) -> Result<()> {
    let v = bt_verify(ctx, name, torrent, out)?;
    ensure!(
        !v.ok,
        "bt verify passed data with a changed byte in piece {piece}:\n{}",
        v.output
    );
    ensure!(
        names_bad_piece(&v.output, piece),
        "bt verify does not name piece {piece}:\n{}",
        v.output
    );
    Ok(())
}

/// A completed download with one byte changed: `bt verify` fails naming the piece, and
/// the next `bt download` fetches that piece again (and nothing else), both when the
/// file's mtime changed (the resume state no longer matches: the data is checked again)
/// and when size and mtime were put back (the resume state still "matches": `bt
/// download` trusts it and fetches nothing, as fast-resume clients do, until `bt verify`
/// has found the damage and corrected the resume state).
fn changed_byte_repaired(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let piece_len = t.info.piece_length;
    let mut seeder = LtSession::seed(
        sb,
        "lt-seed",
        &t.torrent,
        &t.data_dir,
        &SessionOptions::default(),
    )?;
    seeder.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("download")?;
    let file = out.join(&t.info.name);

    let first = download_counted(ctx, "bt-download-1", &t, &out, &mut seeder)?;
    t.check_copy(&out, CompareOptions::default())?;
    ensure!(
        first >= t.info.total_size,
        "the seeder sent {first} bytes for a full download"
    );
    let again = download_counted(ctx, "bt-download-again", &t, &out, &mut seeder)?;
    ensure!(
        again == 0,
        "a second `bt download` of a complete copy fetched {again} bytes"
    );

    // 1. One byte of piece 100 changed, mtime moved: the resume state no longer matches.
    let piece = 100u64;
    let mtime = fs::metadata(&file)?.modified()?;
    flip_byte(&file, piece * piece_len + 1234)?;
    set_mtime(&file, mtime + Duration::from_secs(5))?;
    verify_finds_bad_piece(ctx, "bt-verify-1", &t.torrent, &out, piece)?;
    let repaired = download_counted(ctx, "bt-download-repair-1", &t, &out, &mut seeder)?;
    t.check_copy(&out, CompareOptions::default())
        .context("after a byte changed and the mtime moved, `bt download` did not repair")?;
    ctx.note(format!(
        "mtime moved: {repaired} bytes fetched again (pieces of {piece_len})"
    ));
    ensure!(
        (piece_len..=2 * piece_len).contains(&repaired),
        "repairing one bad piece fetched {repaired} bytes (piece length {piece_len})"
    );

    // 2. One byte of piece 200 changed, size and mtime put back exactly.
    let piece = 200u64;
    let mtime = fs::metadata(&file)?.modified()?;
    flip_byte(&file, piece * piece_len + 77)?;
    set_mtime(&file, mtime)?;
    ensure!(
        fs::metadata(&file)?.modified()? == mtime,
        "mtime not restored"
    );
    let trusted = download_counted(ctx, "bt-download-trusting", &t, &out, &mut seeder)?;
    let still_bad = t.check_copy(&out, CompareOptions::default()).is_err();
    ctx.note(format!(
        "mtime kept: bt download trusted the resume state ({trusted} bytes fetched, copy {})",
        if still_bad {
            "still damaged"
        } else {
            "repaired"
        }
    ));
    ensure!(
        trusted == 0 && still_bad,
        "with size and mtime unchanged, bt download is expected to trust its resume state \
         (fetch nothing, leave the damage): fetched {trusted} bytes, copy still damaged: \
         {still_bad}"
    );
    verify_finds_bad_piece(ctx, "bt-verify-2", &t.torrent, &out, piece)?;
    let repaired = download_counted(ctx, "bt-download-repair-2", &t, &out, &mut seeder)?;
    t.check_copy(&out, CompareOptions::default())
        .context("after bt verify found the damage, `bt download` did not repair it")?;
    ctx.note(format!("after bt verify: {repaired} bytes fetched again"));
    ensure!(
        (piece_len..=2 * piece_len).contains(&repaired),
        "repairing one bad piece after bt verify fetched {repaired} bytes (piece length \
         {piece_len})"
    );
    let v = bt_verify(ctx, "bt-verify-3", &t.torrent, &out)?;
    ensure!(v.ok, "bt verify fails on the repaired copy:\n{}", v.output);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Hostile paths

/// Piece length of the hostile torrents.
const HOSTILE_PIECE_LEN: usize = 16 * 1024;

/// One file entry of a hand-made torrent: raw path elements, contents, symlink target.
struct RawFile {
    path: Vec<Vec<u8>>,
    data: Vec<u8>,
    symlink: Option<Vec<Vec<u8>>>,
}

fn raw(path: &[&str], len: usize, seed: u64) -> RawFile {
    let mut data = vec![0u8; len];
    XorShift::new(seed).fill(&mut data);
    RawFile {
        path: path.iter().map(|p| p.as_bytes().to_vec()).collect(),
        data,
        symlink: None,
    }
}

/// Encodes a v1 torrent named `name` holding `files` (one entry with an empty path: a
/// single-file torrent), built by hand so nothing cleans the paths on the way.
fn hostile_torrent(name: &[u8], files: &[RawFile]) -> Vec<u8> {
    let stream: Vec<u8> = files.iter().flat_map(|f| f.data.iter().copied()).collect();
    let pieces: Vec<u8> = stream
        .chunks(HOSTILE_PIECE_LEN)
        .flat_map(|c| <[u8; 20]>::from(Sha1::digest(c)))
        .collect();
    let mut info = Dict::new();
    let list = |parts: &[Vec<u8>]| {
        Value::List(
            parts
                .iter()
                .map(|p| Value::owned_bytes(p.clone()))
                .collect(),
        )
    };
    match files {
        [single] if single.path.is_empty() => {
            info.insert(&b"length"[..], Value::Int(single.data.len() as i64));
        }
        _ => {
            let entries = files
                .iter()
                .map(|f| {
                    let mut d = Dict::new();
                    d.insert(&b"length"[..], Value::Int(f.data.len() as i64));
                    d.insert(&b"path"[..], list(&f.path));
                    if let Some(target) = &f.symlink {
                        d.insert(&b"attr"[..], Value::owned_bytes(b"l".to_vec()));
                        d.insert(&b"symlink path"[..], list(target));
                    }
                    Value::Dict(d)
                })
                .collect();
            info.insert(&b"files"[..], Value::List(entries));
        }
    }
    info.insert(&b"name"[..], Value::owned_bytes(name.to_vec()));
    info.insert(&b"piece length"[..], Value::Int(HOSTILE_PIECE_LEN as i64));
    info.insert(&b"pieces"[..], Value::owned_bytes(pieces));
    let mut root = Dict::new();
    root.insert(&b"info"[..], Value::Dict(info));
    Value::Dict(root).encode()
}

/// Every path under `root` (files, folders, symlinks), relative to it; symlinks are
/// listed, not followed.
fn walk(root: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                stack.push(path.clone());
            }
            found.insert(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(found)
}

/// The files `bt info --json` lists for `torrent`: sanitized path (joined) and length.
fn sanitized_files(ctx: &Ctx, torrent: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let json = ctx.bt.info_json(torrent)?;
    let files = json["files"]
        .as_array()
        .with_context(|| format!("no `files` in {json}"))?;
    files
        .iter()
        // A symlink entry holds no data and bt does not create it.
        .filter(|f| f.get("symlink_target").is_none())
        .map(|f| {
            let parts = f["path"]
                .as_array()
                .with_context(|| format!("no `path` in {f}"))?;
            let mut path = PathBuf::new();
            for part in parts {
                let part = part
                    .as_str()
                    .with_context(|| format!("bad path element in {f}"))?;
                ensure!(
                    !part.is_empty() && part != "." && part != ".." && !part.contains('/'),
                    "bt info reports the unsafe path element {part:?} in {f}"
                );
                path.push(part);
            }
            let len = f["length"]
                .as_u64()
                .with_context(|| format!("no `length` in {f}"))?;
            Ok((path, len))
        })
        .collect()
}

/// The hostile torrents of [`hostile_paths_stay_inside`]: (label, name, files). `abs` is
/// an absolute path inside the sandbox (so the walk sees it if anything lands there).
fn hostile_cases(abs: &str) -> Vec<(&'static str, Vec<u8>, Vec<RawFile>)> {
    let mut link = raw(&["link-up"], 0, 0);
    link.symlink = Some(vec![
        b"..".to_vec(),
        b"..".to_vec(),
        b"..".to_vec(),
        b"escaped-link".to_vec(),
    ]);
    let multi = vec![
        raw(&["..", "..", "..", "dotdot-escape.bin"], 40_000, 1),
        raw(&[abs], 20_000, 2),
        raw(&["sub", abs, "under-abs.bin"], 3_000, 3),
        raw(&["..\\..\\..\\backslash-escape.bin"], 17_000, 4),
        raw(&["C:", "drive-letter.bin"], 5_000, 5),
        raw(&["C:\\Windows\\drive-path.bin"], 9_000, 6),
        raw(&["", "empty-element.bin"], 1_000, 7),
        raw(&[".", "dot-element.bin"], 33_000, 8),
        raw(&["ok", ".", "..", "..", "mixed.bin"], 12_345, 9),
        raw(&["/"], 100, 10),
        link,
        raw(&["normal.bin"], 25_000, 11),
    ];
    vec![
        ("multi-file named ..", b"..".to_vec(), multi),
        (
            "single file named ../../../",
            b"../../../single-escape.bin".to_vec(),
            vec![raw(&[], 50_000, 12)],
        ),
        (
            "single file with an absolute name",
            abs.as_bytes().to_vec(),
            vec![raw(&[], 30_000, 13)],
        ),
    ]
}

/// Hand-made torrents whose paths try to leave the download folder (`..`, absolute
/// paths, backslashes, drive letters, empty and `.` elements, a symlink entry pointing
/// up) are seeded by `bt seed` and by libtorrent and downloaded by `bt download` into a
/// folder four levels deep in the sandbox: afterwards every path `bt download` created is
/// under its download folder, and the files there are byte-identical at the sanitized
/// paths `bt info --json` reports.
fn hostile_paths_stay_inside(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let abs = sb.path().join("abs-escape.bin");
    let abs = abs.to_str().context("sandbox path is UTF-8")?.to_owned();
    for (i, (label, name, files)) in hostile_cases(&abs).into_iter().enumerate() {
        let torrent = sb.path().join(format!("hostile-{i}.torrent"));
        fs::write(&torrent, hostile_torrent(&name, &files))?;
        let sanitized = sanitized_files(ctx, &torrent).with_context(|| label.to_owned())?;
        let with_data: Vec<&RawFile> = files.iter().filter(|f| f.symlink.is_none()).collect();
        ensure!(
            sanitized.len() == with_data.len(),
            "{label}: bt info lists {} files for {} in the torrent",
            sanitized.len(),
            with_data.len()
        );

        // bt seed from the sanitized paths.
        let seed_dir = sb.mkdir(&format!("seed-{i}"))?;
        for ((rel, len), f) in sanitized.iter().zip(&with_data) {
            ensure!(
                *len == f.data.len() as u64,
                "{label}: {} has length {len}",
                rel.display()
            );
            let path = seed_dir.join(rel);
            fs::create_dir_all(path.parent().context("file has a parent")?)?;
            fs::write(&path, &f.data)?;
        }
        let seed = ctx.bt.seed(
            sb,
            &format!("bt-seed-{i}"),
            &torrent,
            &seed_dir,
            sb.addr()?,
            &[],
        )?;
        download_inside(
            ctx,
            &format!("{label}, from bt seed"),
            &format!("{i}-bt"),
            &torrent,
            Seeder {
                addr: seed.addr(),
                state: Some(&seed_dir.join(".bt")),
            },
            &sanitized,
            &with_data,
        )?;
        drop(seed);

        // libtorrent, which cleans paths its own way: its data goes where it wants it.
        let lt_info = libtorrent::info(&torrent)
            .with_context(|| format!("{label}: libtorrent cannot load the torrent"))?;
        let lt_dir = sb.mkdir(&format!("lt-seed-{i}"))?;
        let lt_files: Vec<_> = lt_info
            .files
            .iter()
            .filter(|f| !f.pad && f.size > 0)
            .collect();
        let data_files: Vec<&&RawFile> = with_data.iter().filter(|f| !f.data.is_empty()).collect();
        ensure!(
            lt_files.len() == data_files.len(),
            "{label}: libtorrent lists {} non-empty files, the torrent {}",
            lt_files.len(),
            data_files.len()
        );
        for (lf, f) in lt_files.iter().zip(&data_files) {
            let path = lt_dir.join(&lf.path);
            ensure!(
                path.starts_with(&lt_dir) && !lf.path.split('/').any(|p| p == ".."),
                "{label}: libtorrent maps a file to {:?}",
                lf.path
            );
            fs::create_dir_all(path.parent().context("file has a parent")?)?;
            fs::write(&path, &f.data)?;
        }
        let mut lt = LtSession::seed(
            sb,
            &format!("lt-seed-{i}"),
            &torrent,
            &lt_dir,
            &SessionOptions::default(),
        )?;
        lt.wait_seeding(CHECK_TIMEOUT)
            .with_context(|| format!("{label}: libtorrent does not seed it"))?;
        download_inside(
            ctx,
            &format!("{label}, from libtorrent"),
            &format!("{i}-lt"),
            &torrent,
            Seeder {
                addr: lt.addr(),
                state: None,
            },
            &sanitized,
            &with_data,
        )?;
    }
    ensure!(!Path::new(&abs).exists(), "{abs} exists");
    Ok(())
}

/// The peer a hostile-paths download comes from.
struct Seeder<'a> {
    /// Where it listens.
    addr: std::net::SocketAddr,
    /// Where it keeps its own resume state, if inside the sandbox.
    state: Option<&'a Path>,
}

/// `bt download` of `torrent` from `seeder` into `<sandbox>/jail-<tag>/a/b/c/download`;
/// checks that it added nothing to the sandbox outside that folder (besides the process
/// logs and `seeder.state`, where a `bt seed` keeps its own resume state) and that the
/// files are exactly `sanitized` with `files`' bytes.
fn download_inside(
    ctx: &Ctx,
    label: &str,
    tag: &str,
    torrent: &Path,
    seeder: Seeder,
    sanitized: &[(PathBuf, u64)],
    files: &[&RawFile],
) -> Result<()> {
    let sb = &ctx.sandbox;
    let out = sb.mkdir(&format!("jail-{tag}/a/b/c/download"))?;
    let before = walk(sb.path())?;
    let mut bt = ctx.bt.download(
        sb,
        &format!("bt-download-{tag}"),
        torrent,
        &out,
        sb.addr()?,
        &[seeder.addr],
    )?;
    bt.wait_success(TRANSFER_TIMEOUT)
        .with_context(|| label.to_owned())?;
    let after = walk(sb.path())?;
    let logs = Path::new("logs");
    let rel_out = out.strip_prefix(sb.path())?;
    let outside: Vec<_> = after
        .difference(&before)
        .filter(|p| !p.starts_with(rel_out) && !p.starts_with(logs))
        .filter(|p| {
            seeder
                .state
                .is_none_or(|s| !sb.path().join(p).starts_with(s))
        })
        .collect();
    ensure!(
        outside.is_empty(),
        "{label}: bt download created {outside:?} outside {}",
        out.display()
    );

    let mut want: BTreeSet<PathBuf> = sanitized.iter().map(|(p, _)| p.clone()).collect();
    for (rel, _) in sanitized {
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            want.insert(p.to_path_buf());
            parent = p.parent();
        }
    }
    let got: BTreeSet<PathBuf> = walk(&out)?
        .into_iter()
        .filter(|p| !p.starts_with(".bt"))
        .collect();
    ensure!(
        got == want,
        "{label}: the download folder holds {:?}, expected {:?}",
        got.difference(&want).collect::<Vec<_>>(),
        want.difference(&got).collect::<Vec<_>>()
    );
    for ((rel, _), f) in sanitized.iter().zip(files) {
        let path = out.join(rel);
        let meta = fs::symlink_metadata(&path)?;
        ensure!(
            meta.is_file(),
            "{label}: {} is not a regular file",
            path.display()
        );
        ensure!(
            fs::read(&path)? == f.data,
            "{label}: {} differs from the torrent's data",
            path.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A full disk

/// Size of the tmpfs the download first runs out of space on (the payload is 64 MiB).
const SMALL_TMPFS: &str = "24m";
/// Its size once there is space again.
const BIG_TMPFS: &str = "256m";

/// The script run in a private user + mount namespace (`unshare -rm`): mounts a small
/// tmpfs over the download folder, runs `bt download` until it fails, copies what it left
/// to a snapshot folder, waits for the harness, grows the tmpfs, runs `bt download`
/// again and copies the result out. The mount is invisible outside the namespace, hence
/// the copies. Arguments: OUT SNAP FINAL SYNC BT TORRENT SEED LISTEN1 LISTEN2.
const TMPFS_SCRIPT: &str = r#"
set -u
OUT=$1 SNAP=$2 FINAL=$3 SYNC=$4 BT=$5 TORRENT=$6 SEED=$7 L1=$8 L2=$9
mount -t tmpfs -o size=SMALL bt-disk-full "$OUT" || exit 90
"$BT" download "$TORRENT" -o "$OUT" --listen "$L1" --peer "$SEED" --no-dht \
    >"$SYNC/first.out" 2>"$SYNC/first.err"
echo $? >"$SYNC/first.exit"
cp -a --sparse=always "$OUT/." "$SNAP/" || exit 91
df -k "$OUT" >"$SYNC/df.txt"
touch "$SYNC/stage1"
n=0
while [ ! -e "$SYNC/go" ]; do
    sleep 0.1; n=$((n+1)); [ $n -lt 3000 ] || exit 92
done
mount -o remount,size=BIG "$OUT" || exit 93
"$BT" download "$TORRENT" -o "$OUT" --listen "$L2" --peer "$SEED" --no-dht \
    >"$SYNC/second.out" 2>"$SYNC/second.err"
echo $? >"$SYNC/second.exit"
cp -a --sparse=always "$OUT/." "$FINAL/" || exit 94
"#;

/// Waits at most `timeout` for `path` to exist.
fn wait_for_file(path: &Path, timeout: Duration, proc: &mut Proc) -> Result<()> {
    crate::deadline::poll_until(timeout, &format!("{}", path.display()), || {
        if let Some(status) = proc.try_exit()? {
            anyhow::bail!("the tmpfs script exited ({status}) early:\n{}", proc.tail());
        }
        Ok(path.exists().then_some(()))
    })
}

/// The pieces a saved resume state claims, if `dir/.bt/<hash>.resume` exists.
fn claimed_pieces(dir: &Path, info_hash: &str, num_pieces: usize) -> Result<Option<Vec<bool>>> {
    let path = dir.join(".bt").join(format!("{info_hash}.resume"));
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let value =
        bt_bencode::decode(&bytes).with_context(|| format!("{} is not bencode", path.display()))?;
    let packed = value
        .as_dict()
        .and_then(|d| d.get(b"pieces"))
        .and_then(|v| v.as_bytes())
        .with_context(|| format!("no `pieces` in {}", path.display()))?;
    ensure!(
        packed.len() == num_pieces.div_ceil(8),
        "{}: bitfield of {} bytes",
        path.display(),
        packed.len()
    );
    Ok(Some(
        (0..num_pieces)
            .map(|i| packed[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect(),
    ))
}

/// `bt download` onto a real tmpfs too small for the payload (in a private mount
/// namespace, so no privileges are needed): it stops with a clear "disk full" error, the
/// pieces intact on the tmpfs include every piece its resume state claims (if it could
/// save one), and once the tmpfs is grown the same command completes byte-identical,
/// fetching again at most the missing pieces plus the pipeline bound.
fn disk_full_on_tmpfs(ctx: &Ctx) -> Result<()> {
    let sb = &ctx.sandbox;
    let mut probe = Command::new("unshare");
    probe.args(["-rm", "true"]);
    crate::process::run("unshare -rm true", &probe, Duration::from_secs(20)).context(
        "this scenario needs `unshare -rm` (unprivileged user and mount namespaces, \
         util-linux) to mount a small tmpfs",
    )?;
    let t = TestTorrent::make(sb, Shape::Single, &[])?;
    let mut seeder = LtSession::seed(
        sb,
        "lt-seed",
        &t.torrent,
        &t.data_dir,
        &SessionOptions::default(),
    )?;
    seeder.wait_seeding(CHECK_TIMEOUT)?;
    let out = sb.mkdir("tmpfs-download")?;
    let snap = sb.mkdir("snapshot")?;
    let fin = sb.mkdir("final")?;
    let sync = sb.mkdir("sync")?;
    let script = TMPFS_SCRIPT
        .replace("SMALL", SMALL_TMPFS)
        .replace("BIG", BIG_TMPFS);
    let mut cmd = Command::new("unshare");
    cmd.args(["-rm", "sh", "-c", &script, "sh"])
        .arg(&out)
        .arg(&snap)
        .arg(&fin)
        .arg(&sync)
        .arg(ctx.bt.path())
        .arg(&t.torrent)
        .arg(seeder.addr().to_string())
        .arg(sb.addr()?.to_string())
        .arg(sb.addr()?.to_string());
    let mut proc = sb.spawn("unshare-tmpfs", &cmd)?;

    wait_for_file(&sync.join("stage1"), TRANSFER_TIMEOUT, &mut proc)?;
    let exit = fs::read_to_string(sync.join("first.exit"))?;
    let err = fs::read_to_string(sync.join("first.err"))?;
    ensure!(
        exit.trim() != "0",
        "bt download succeeded on a {SMALL_TMPFS} tmpfs for a 64 MiB payload"
    );
    let last_line = err.lines().last().unwrap_or("");
    ensure!(
        last_line.starts_with("error: ") && last_line.contains("disk full"),
        "bt download on a full tmpfs ended with status {} and no clear \"disk full\" error:\n{err}",
        exit.trim()
    );
    let sent_before = settled_upload(&mut seeder)?;
    let mut good = vec![false; t.info.piece_hashes.len()];
    update_verified(&snap.join(&t.info.name), &t.info, &mut good)?;
    let have = verified_bytes(&t.info, &good);
    let pieces = good.iter().filter(|&&g| g).count();
    ensure!(pieces > 0, "no piece intact on the tmpfs when it filled up");
    let claimed = claimed_pieces(&snap, &t.info.info_hash, good.len())?;
    let claim_note = match &claimed {
        Some(c) => {
            let bad: Vec<usize> = (0..c.len()).filter(|&i| c[i] && !good[i]).collect();
            ensure!(
                bad.is_empty(),
                "the resume state claims pieces that are not intact: {bad:?}"
            );
            format!("resume state claims {}", c.iter().filter(|&&x| x).count())
        }
        None => "no resume state (no room to save one)".to_owned(),
    };
    ctx.note(format!(
        "disk full: \"{}\"; {pieces}/{} pieces intact, {claim_note}",
        last_line.trim_start_matches("error: "),
        good.len()
    ));

    fs::write(sync.join("go"), b"")?;
    let status = proc.wait(TRANSFER_TIMEOUT)?;
    let second = fs::read_to_string(sync.join("second.exit")).unwrap_or_default();
    ensure!(
        status.success() && second.trim() == "0",
        "after the tmpfs grew, bt download exited {:?} (script {status}):\n{}",
        second.trim(),
        fs::read_to_string(sync.join("second.err")).unwrap_or_default()
    );
    t.check_copy(&fin, CompareOptions::default())?;
    let sent = settled_upload(&mut seeder)? - sent_before;
    let missing = t.info.total_size - have;
    ctx.note(format!(
        "with space: {sent} bytes fetched for {missing} missing"
    ));
    ensure!(
        sent <= missing + in_flight_bound(t.info.piece_length),
        "after the tmpfs grew, bt fetched {sent} bytes for {missing} missing: pieces intact \
         on disk were fetched again"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_fractions_are_sorted_distinct_and_inside() {
        for seed in 0..200 {
            let f = kill_fractions(seed, KILLS);
            assert_eq!(f.len(), KILLS);
            assert!(f.windows(2).all(|w| w[1] - w[0] > 0.02), "{f:?}");
            assert!(f.iter().all(|&x| (0.08..0.92).contains(&x)), "{f:?}");
        }
        assert_ne!(kill_fractions(1, KILLS), kill_fractions(2, KILLS));
    }

    #[test]
    fn in_flight_bound_covers_the_pipeline_in_whole_pieces() {
        assert_eq!(in_flight_bound(256 * 1024), 25 * 256 * 1024);
        assert_eq!(in_flight_bound(1024 * 1024), 7 * 1024 * 1024);
        assert_eq!(in_flight_bound(16 * 1024), 385 * 16 * 1024);
    }

    #[test]
    fn bad_pieces_are_read_from_verify_output() {
        let out = "big.bin: 255 of 257 pieces intact (64 MiB)\n  big.bin: 2 of 257 pieces bad: 3, 100-101\n";
        assert!(names_bad_piece(out, 3));
        assert!(names_bad_piece(out, 100));
        assert!(names_bad_piece(out, 101));
        assert!(!names_bad_piece(out, 4));
        assert!(!names_bad_piece(out, 102));
        assert!(!names_bad_piece("all 257 pieces intact", 3));
    }

    #[test]
    fn hostile_torrents_decode_with_their_raw_paths() {
        let cases = hostile_cases("/abs/escape.bin");
        for (label, name, files) in &cases {
            let bytes = hostile_torrent(name, files);
            let meta =
                bt_meta::Metainfo::from_bytes(&bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
            for f in meta.info.files() {
                assert!(
                    f.path()
                        .iter()
                        .all(|p| !p.is_empty() && p != ".." && !p.contains('/')),
                    "{label}: {:?}",
                    f.path()
                );
            }
        }
    }
}
