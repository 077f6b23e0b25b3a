//! The crates form layers: each depends only on the layers below it.
//!
//! bt-bencode <- bt-meta <- {bt-tracker, bt-wire, bt-utp, bt-dht} <- bt-engine <- {bt-daemon, bt-sim} <- bt-cli
//! bt-webui (HTML, CSS, JavaScript; no bt crate below it) <- bt-daemon

use std::collections::BTreeMap;
use std::process::Command;

/// Layer number of each crate; a crate may depend only on crates with a lower number.
fn layer(name: &str) -> Option<u32> {
    Some(match name {
        "bt-bencode" | "bt-webui" => 0,
        "bt-meta" => 1,
        "bt-tracker" | "bt-wire" | "bt-utp" | "bt-dht" => 2,
        "bt-engine" => 3,
        "bt-daemon" | "bt-sim" => 4,
        "bt-cli" => 5,
        _ => return None,
    })
}

#[test]
fn workspace_dependencies_point_down_the_layers() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pkg in meta["packages"].as_array().expect("packages") {
        let name = pkg["name"].as_str().expect("name").to_string();
        for dep in pkg["dependencies"].as_array().expect("dependencies") {
            // Dev-dependencies may reach sideways for tests; normal and build ones may not.
            if dep["kind"].as_str() == Some("dev") {
                continue;
            }
            let dep_name = dep["name"].as_str().expect("dep name").to_string();
            edges.entry(name.clone()).or_default().push(dep_name);
        }
    }
    let (seen, bad) = violations(&edges);
    assert_eq!(seen, 11, "expected all eleven bt crates in cargo metadata");
    assert!(bad.is_empty(), "dependencies point the wrong way: {bad:?}");
}

/// Counts the bt crates among `edges` and lists every edge that does not point down.
fn violations(edges: &BTreeMap<String, Vec<String>>) -> (usize, Vec<String>) {
    let mut seen = 0;
    let mut bad = Vec::new();
    for (from, deps) in edges {
        let Some(from_layer) = layer(from) else {
            continue;
        };
        seen += 1;
        for to in deps {
            if let Some(to_layer) = layer(to) {
                if to_layer >= from_layer {
                    bad.push(format!(
                        "{from} (layer {from_layer}) -> {to} (layer {to_layer})"
                    ));
                }
            }
        }
    }
    (seen, bad)
}

#[test]
fn sideways_and_upward_edges_are_violations() {
    let mut edges = BTreeMap::new();
    edges.insert(
        "bt-engine".to_string(),
        vec!["bt-cli".to_string(), "bt-wire".to_string()],
    );
    edges.insert(
        "bt-wire".to_string(),
        vec!["bt-dht".to_string(), "bytes".to_string()],
    );
    let (seen, bad) = violations(&edges);
    assert_eq!(seen, 2);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("bt-engine (layer 3) -> bt-cli"));
    assert!(bad[1].starts_with("bt-wire (layer 2) -> bt-dht"));
}
