//! Every vector of `magnet/vectors.json`: each `expected` field must match.

use bt_meta::Magnet;
use serde_json::Value;

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in list {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Compares one vector; returns a description of the first mismatch.
fn check(vector: &Value) -> Result<(), String> {
    let uri = vector["uri"].as_str().unwrap();
    let expected = &vector["expected"];
    let note = vector["note"].as_str().unwrap_or("");
    let parsed = Magnet::parse(uri);
    let valid = expected["valid"].as_bool().unwrap();
    let m = match (parsed, valid) {
        (Ok(m), true) => m,
        (Err(_), false) => return Ok(()),
        (Ok(m), false) => return Err(format!("accepted, expected invalid: {m:?}")),
        (Err(e), true) => return Err(format!("rejected ({e}), expected valid")),
    };
    let eq = |field: &str, ours: Value| {
        if ours == expected[field] {
            Ok(())
        } else {
            Err(format!(
                "{field}: ours {ours}, expected {}",
                expected[field]
            ))
        }
    };
    eq("info_hash_v1", m.info_hash.map(|h| h.to_hex()).into())?;
    eq("info_hash_v2", m.info_hash_v2.map(|h| h.to_hex()).into())?;
    eq("display_name", m.display_name.clone().into())?;
    eq("web_seeds", m.web_seeds.clone().into())?;
    eq("select_only", m.select_only.clone().into())?;
    // Disputed: repeats are dropped here (webtorrent); libtorrent keeps them. The note
    // says to compare after removing repeats.
    let removing_repeats = note.contains("removing repeats");
    for (field, ours) in [
        ("trackers", m.trackers.clone()),
        ("peers", m.peers.iter().map(|p| p.to_string()).collect()),
    ] {
        let mut want = strings(&expected[field]);
        if removing_repeats {
            want = dedup(want);
        }
        // Disputed (lt-reject-invalid-tracker-url): `expected` is libtorrent master
        // built without WebRTC; the note says WebRTC builds keep ws:// and wss://, and
        // so do we (gen-sintel, undisputed, expects wss:// trackers).
        let ours: Vec<String> = if note.contains("wss:// and ws:// are kept") {
            ours.into_iter()
                .filter(|t| !t.starts_with("ws://") && !t.starts_with("wss://"))
                .collect()
        } else {
            ours
        };
        if ours != want {
            return Err(format!("{field}: ours {ours:?}, expected {want:?}"));
        }
    }
    // Round trip: what we format parses back to the same thing.
    let again = Magnet::parse(&m.to_uri()).map_err(|e| format!("round trip: {e}"))?;
    if again != m {
        return Err(format!("round trip changed {m:?} into {again:?}"));
    }
    Ok(())
}

#[test]
fn magnet_vectors() {
    let path = crate::fixtures().join("magnet/vectors.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 92);
    let mut failures = Vec::new();
    for v in vectors {
        if let Err(e) = check(v) {
            failures.push(format!("{}: {e}\n    uri {:?}", v["id"], v["uri"]));
        }
    }
    println!(
        "magnets: {}/{}",
        vectors.len() - failures.len(),
        vectors.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
