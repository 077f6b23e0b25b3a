//! The shared third-party corpus (`../shared/fixtures`, see its README) run through our
//! parsers: every torrent of `torrents/manifest.json` with bt-meta, every magnet vector,
//! and every bencode vector with bt-bencode. `run` prints each mismatch and returns one
//! summary line, or an error when anything disagrees.
//!
//! The same checks, with more detail, are bt-meta's integration tests
//! (`crates/bt-meta/tests/it`); this copy lets `cargo xtask ci` report one line.

use std::path::Path;

use anyhow::{bail, Context, Result};
use bt_bencode::{DecodeOptions, ErrorKind, Value as Bencode};
use bt_meta::{Magnet, Metainfo};
use serde_json::{json, Value};

/// Disputed invalid torrents that bt-meta accepts on purpose: it renames duplicate
/// paths like libtorrent instead of refusing them like Transmission.
const ACCEPTED_DISPUTED: &[&str] = &["tr--dup-files.torrent"];

/// Runs every check; returns e.g.
/// `torrents: 135/135 valid match libtorrent, 54/54 invalid rejected; magnets: 92/92; bencode: 157/157`.
pub fn run(shared_fixtures: &Path) -> Result<String> {
    let mut failures = Vec::new();
    let torrents = torrents(shared_fixtures, &mut failures)?;
    let magnets = magnets(shared_fixtures, &mut failures)?;
    let bencode = bencode(shared_fixtures, &mut failures)?;
    let summary = format!("{torrents}; {magnets}; {bencode}");
    for f in &failures {
        println!("corpus mismatch: {f}");
    }
    if failures.is_empty() {
        Ok(summary)
    } else {
        bail!("{} corpus mismatches: {summary}", failures.len())
    }
}

fn load(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    serde_json::from_slice(&bytes).with_context(|| path.display().to_string())
}

fn hex_or_null<T: ToString>(h: Option<T>) -> Value {
    h.map(|h| Value::String(h.to_string()))
        .unwrap_or(Value::Null)
}

fn torrents(fixtures: &Path, failures: &mut Vec<String>) -> Result<String> {
    let manifest = load(&fixtures.join("torrents/manifest.json"))?;
    let entries = manifest["torrents"]
        .as_array()
        .context("manifest: no torrents")?;
    let (mut valid, mut valid_ok, mut invalid, mut invalid_ok) = (0, 0, 0, 0);
    for entry in entries {
        let file = entry["file"]
            .as_str()
            .context("manifest: entry without file")?;
        let short = file.rsplit('/').next().unwrap_or(file);
        let bytes = std::fs::read(fixtures.join(file)).with_context(|| file.to_string())?;
        let parsed = Metainfo::from_bytes(&bytes);
        if entry["expected"] == "valid" {
            valid += 1;
            let m = match parsed {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{short}: rejected: {e}"));
                    continue;
                }
            };
            let ours = json!({
                "info_hash_v1": hex_or_null(m.info_hash),
                "info_hash_v2": hex_or_null(m.info_hash_v2),
                "piece_length": m.info.piece_len,
                "num_pieces": m.info.num_pieces(),
                "total_size": m.info.total_len(),
                "num_files": m.info.files().len(),
                "private": m.info.private,
            });
            let mut ok = true;
            for (key, value) in ours.as_object().expect("an object") {
                if value != &entry[key] {
                    failures.push(format!(
                        "{short}: {key}: ours {value}, libtorrent {}",
                        entry[key]
                    ));
                    ok = false;
                }
            }
            valid_ok += usize::from(ok);
        } else {
            invalid += 1;
            match parsed {
                Err(_) => invalid_ok += 1,
                Ok(_) if ACCEPTED_DISPUTED.contains(&short) => invalid_ok += 1,
                Ok(_) => failures.push(format!("{short}: accepted, expected {}", entry["error"])),
            }
        }
    }
    Ok(format!(
        "torrents: {valid_ok}/{valid} valid match libtorrent, {invalid_ok}/{invalid} invalid rejected"
    ))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn check_magnet(vector: &Value) -> Result<(), String> {
    let uri = vector["uri"].as_str().unwrap_or_default();
    let expected = &vector["expected"];
    let note = vector["note"].as_str().unwrap_or("");
    let m = match (
        Magnet::parse(uri),
        expected["valid"].as_bool() == Some(true),
    ) {
        (Ok(m), true) => m,
        (Err(_), false) => return Ok(()),
        (Ok(_), false) => return Err("accepted, expected invalid".into()),
        (Err(e), true) => return Err(format!("rejected: {e}")),
    };
    let plain = [
        ("info_hash_v1", hex_or_null(m.info_hash)),
        ("info_hash_v2", hex_or_null(m.info_hash_v2)),
        ("display_name", json!(m.display_name)),
        ("web_seeds", json!(m.web_seeds)),
        ("select_only", json!(m.select_only)),
    ];
    for (key, ours) in plain {
        if ours != expected[key] {
            return Err(format!("{key}: ours {ours}, expected {}", expected[key]));
        }
    }
    // Disputed notes: repeats are compared removed; ws:// and wss:// trackers are kept
    // by WebRTC builds of libtorrent and by bt-meta.
    let lists = [
        ("trackers", m.trackers.clone()),
        (
            "peers",
            m.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ),
    ];
    for (key, mut ours) in lists {
        let mut want = strings(&expected[key]);
        if note.contains("removing repeats") {
            want = dedup(want);
        }
        if note.contains("wss:// and ws:// are kept") {
            ours.retain(|t| !t.starts_with("ws://") && !t.starts_with("wss://"));
        }
        if ours != want {
            return Err(format!("{key}: ours {ours:?}, expected {want:?}"));
        }
    }
    Ok(())
}

fn magnets(fixtures: &Path, failures: &mut Vec<String>) -> Result<String> {
    let doc = load(&fixtures.join("magnet/vectors.json"))?;
    let vectors = doc["vectors"]
        .as_array()
        .context("magnet vectors: no list")?;
    let mut ok = 0;
    for v in vectors {
        match check_magnet(v) {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("magnet {}: {e}", v["id"])),
        }
    }
    Ok(format!("magnets: {ok}/{}", vectors.len()))
}

/// A decoded value in the vectors' JSON convention.
fn to_json(v: &Bencode<'_>) -> Value {
    match v {
        Bencode::Int(i) => json!({ "int": i.to_string() }),
        Bencode::Bytes(b) => json!({ "bytes": hex::encode(b) }),
        Bencode::List(items) => json!({ "list": items.iter().map(to_json).collect::<Vec<_>>() }),
        Bencode::Dict(d) => json!({
            "dict": d.iter().map(|(k, v)| json!([hex::encode(k), to_json(v)])).collect::<Vec<_>>()
        }),
    }
}

fn check_bencode(v: &Value) -> Result<(), String> {
    let input = hex::decode(v["input_hex"].as_str().unwrap_or_default())
        .map_err(|e| format!("bad input_hex: {e}"))?;
    let strict = DecodeOptions::strict().decode(&input);
    let lenient = DecodeOptions::default().decode(&input);
    if v["valid"].as_bool() == Some(true) {
        if v["exceeds_i64"].as_bool() == Some(true) {
            // BEP 3 integers are unbounded; an i64 decoder must say overflow.
            return match (&strict, &lenient) {
                (Err(a), Err(b))
                    if a.kind == ErrorKind::IntOverflow && b.kind == ErrorKind::IntOverflow =>
                {
                    Ok(())
                }
                _ => Err(format!("beyond i64: want IntOverflow, got {strict:?}")),
            };
        }
        let value = match strict {
            Ok(value) => value,
            Err(e)
                if matches!(e.kind, ErrorKind::DepthExceeded { .. })
                    && v["depth"].as_u64() > Some(100) =>
            {
                return Ok(()); // a documented depth limit (libtorrent's is 100 too)
            }
            Err(e) => return Err(format!("strict decode failed: {e}")),
        };
        if !v["decoded"].is_null() && to_json(&value) != v["decoded"] {
            return Err(format!(
                "decoded {} , expected {}",
                to_json(&value),
                v["decoded"]
            ));
        }
        return Ok(());
    }
    if strict.is_ok() {
        return Err(format!("strict decode accepted a {} input", v["category"]));
    }
    match (v["category"].as_str(), lenient) {
        (_, Err(_)) => Ok(()),
        (Some("malformed"), Ok(_)) => Err("lenient decode accepted malformed input".into()),
        (_, Ok(value)) if to_json(&value) == v["lenient_decoded"] => Ok(()),
        (_, Ok(value)) => Err(format!(
            "lenient decoded {}, expected {}",
            to_json(&value),
            v["lenient_decoded"]
        )),
    }
}

fn bencode(fixtures: &Path, failures: &mut Vec<String>) -> Result<String> {
    let doc = load(&fixtures.join("bencode/vectors.json"))?;
    let vectors = doc["vectors"]
        .as_array()
        .context("bencode vectors: no list")?;
    let mut ok = 0;
    for v in vectors {
        match check_bencode(v) {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("bencode {}: {e}", v["id"])),
        }
    }
    Ok(format!("bencode: {ok}/{}", vectors.len()))
}
