//! Every torrent of `torrents/manifest.json`: valid ones must parse with libtorrent
//! 2.0.8's properties, invalid ones must be rejected with an error (never a panic).
//!
//! Pad-file convention: like libtorrent, the file list has every pad file, those in the
//! v1 `files` list of v1 and hybrid torrents and those synthesized to align the files of
//! a v2-only multi-file torrent (e.g. `lt--v2_multiple_files`: 3 real files, 5 entries),
//! so we compare with `total_size` and `num_files` (pads included). Names are compared
//! as raw bytes with `raw.name_raw_utf8` / `raw.name_raw_hex` (libtorrent's `name` is
//! sanitized its own way).

use std::path::Path;

use bt_meta::Metainfo;
use serde_json::Value;

/// How this implementation decides each disputed entry, and why.
const DISPUTED: &[(&str, bool, &str)] = &[
    (
        "lt--duplicate_files2.torrent",
        false,
        "118 copies of one path exhaust the renaming budget (libtorrent master rejects too)",
    ),
    (
        "lt--v2_invalid_piece_layer_root.torrent",
        false,
        "we check that each piece layer hashes to its pieces root (libtorrent master)",
    ),
    (
        "lt--v2_invalid_root_hash.torrent",
        false,
        "we check that each piece layer hashes to its pieces root (libtorrent master)",
    ),
    (
        "lt--v2_unknown_piece_layer_entry.torrent",
        false,
        "a piece layer must belong to a file (libtorrent master)",
    ),
    (
        "tr--dup-files.torrent",
        true,
        "duplicate paths are renamed `name.1.ext` like libtorrent, not refused like Transmission",
    ),
    (
        "tr--dup-pieces-key.torrent",
        false,
        "a repeated key inside `info` is ambiguous: refused (Transmission)",
    ),
    (
        "tr--gimp-2.10.32-1-arm64.dmg.torrent",
        false,
        "no `info` dictionary",
    ),
];

fn hex_or_null<T: ToString>(h: Option<T>) -> Value {
    h.map(|h| Value::String(h.to_string()))
        .unwrap_or(Value::Null)
}

fn check_valid(m: &Metainfo, entry: &Value) -> Result<(), String> {
    let mut diffs = Vec::new();
    let mut eq = |what: &str, ours: Value, theirs: &Value| {
        if &ours != theirs {
            diffs.push(format!("{what}: ours {ours}, libtorrent {theirs}"));
        }
    };
    eq(
        "info_hash_v1",
        hex_or_null(m.info_hash),
        &entry["info_hash_v1"],
    );
    eq(
        "info_hash_v2",
        hex_or_null(m.info_hash_v2),
        &entry["info_hash_v2"],
    );
    eq(
        "piece_length",
        m.info.piece_len.into(),
        &entry["piece_length"],
    );
    eq(
        "num_pieces",
        m.info.num_pieces().into(),
        &entry["num_pieces"],
    );
    eq(
        "total_size",
        m.info.total_len().into(),
        &entry["total_size"],
    );
    eq(
        "num_files",
        m.info.files().len().into(),
        &entry["num_files"],
    );
    let real = m.info.files().iter().filter(|f| !f.is_pad()).count();
    eq(
        "num_files_excluding_pad",
        real.into(),
        &entry["num_files_excluding_pad"],
    );
    eq("private", m.info.private.into(), &entry["private"]);
    let raw = &entry["raw"];
    let raw_name = match (raw["name_raw_utf8"].as_str(), raw["name_raw_hex"].as_str()) {
        (Some(s), _) => s.as_bytes().to_vec(),
        (None, Some(h)) => hex::decode(h).unwrap(),
        _ => panic!("no raw name"),
    };
    let has_utf8_name = raw["info_keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|k| k == "name.utf-8"));
    if has_utf8_name {
        // `raw.name_raw_*` is the `name` key; we (and libtorrent) prefer `name.utf-8`.
        eq("name", m.info.name.clone().into(), &entry["name"]);
    } else if m.info.raw_name != raw_name {
        diffs.push(format!(
            "raw name: ours {:?}, file {:?}",
            String::from_utf8_lossy(&m.info.raw_name),
            String::from_utf8_lossy(&raw_name)
        ));
    }
    // File sizes and pad flags, in order, against libtorrent's file list. Zero-length
    // files are left out: they hold no bytes, and for hybrid torrents libtorrent may
    // list one after the pad that follows it in `files` (lt--empty-files-2).
    let lt_files = entry["libtorrent_2_0_8"]["files"].as_array().unwrap();
    let ours: Vec<(u64, bool)> = m
        .info
        .files()
        .iter()
        .filter(|f| f.length() > 0)
        .map(|f| (f.length(), f.is_pad()))
        .collect();
    let theirs: Vec<(u64, bool)> = lt_files
        .iter()
        .filter(|f| f["size"].as_u64() != Some(0))
        .map(|f| {
            (
                f["size"].as_u64().unwrap(),
                f["pad"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    if ours != theirs {
        diffs.push(format!(
            "file sizes/pads: ours {ours:?}, libtorrent {theirs:?}"
        ));
    }
    // Every file lands inside the download folder.
    let base = Path::new("/downloads");
    for f in m.info.files() {
        if f.display_path() != f.path().join("/") {
            diffs.push(format!(
                "display path {:?} is not the path joined",
                f.display_path()
            ));
        }
        if !f.path_under(base).starts_with(base) || f.path().len() != f.raw_path().len() {
            diffs.push(format!("path {:?} escapes or lost elements", f.path()));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

#[test]
fn torrent_manifest() {
    let dir = crate::fixtures().join("torrents");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["torrents"].as_array().unwrap();
    let (mut valid, mut valid_ok, mut invalid, mut invalid_ok) = (0, 0, 0, 0);
    let mut disputed_notes = Vec::new();
    let mut failures = Vec::new();
    for entry in entries {
        let file = entry["file"].as_str().unwrap();
        let short = file.rsplit('/').next().unwrap();
        let bytes = std::fs::read(crate::fixtures().join(file)).unwrap();
        let result = Metainfo::from_bytes(&bytes);
        let expected_valid = entry["expected"] == "valid";
        let decision = DISPUTED.iter().find(|d| d.0 == short);
        if entry["disputed"].as_bool().unwrap() {
            let (_, accept, why) =
                decision.unwrap_or_else(|| panic!("{short}: disputed, but no decision listed"));
            if result.is_ok() != *accept {
                failures.push(format!(
                    "{short}: disputed, we decided accept={accept} ({why}), got {:?}",
                    result.as_ref().err()
                ));
            } else if *accept != expected_valid {
                disputed_notes.push(format!(
                    "{short} {}: {why}",
                    if *accept { "accepted" } else { "rejected" }
                ));
            }
        }
        if expected_valid {
            valid += 1;
            match &result {
                Ok(m) => match check_valid(m, entry) {
                    Ok(()) => valid_ok += 1,
                    Err(e) => failures.push(format!("{short}: {e}")),
                },
                Err(e) => failures.push(format!("{short}: rejected: {e}")),
            }
        } else {
            invalid += 1;
            match &result {
                Err(_) => invalid_ok += 1,
                Ok(_) if decision.is_some_and(|d| d.1) => invalid_ok += 1,
                Ok(_) => failures.push(format!("{short}: accepted, expected {}", entry["error"])),
            }
        }
        if let Err(e) = &result {
            // Every message is one line naming something.
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{short}: {msg:?}");
        }
    }
    let mut summary = format!(
        "torrents: {valid_ok}/{valid} valid match libtorrent, {invalid_ok}/{invalid} invalid rejected"
    );
    if !disputed_notes.is_empty() {
        summary.push_str(&format!(" (disputed: {})", disputed_notes.join("; ")));
    }
    println!("{summary}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!((valid, invalid), (135, 54));
}
