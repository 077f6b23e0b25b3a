//! The `bt` binary end to end: `bt info` (text and `--json`) on the project's fixture
//! torrents and on magnet links, `bt create` then `bt info` round trips, and the
//! one-line error format.
//!
//! The fixtures in `<workspace>/fixtures/bt-*.torrent` are made by `bt create --no-date`
//! from payloads generated here ([`FIXTURES`]); `fixtures_are_reproducible` rebuilds
//! them and compares bytes. To regenerate after an intended format change, run this
//! test with `BT_UPDATE_FIXTURES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod folders;
mod remote;
mod selection;

fn bt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bt"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run bt")
}

fn ok(args: &[&str]) -> String {
    let out = bt(args);
    assert!(
        out.status.success(),
        "bt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn info_json(target: &str) -> Value {
    serde_json::from_str(&ok(&["info", "--json", target])).unwrap()
}

fn workspace_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A fixture: its payload (relative path, length) and the `bt create` flags.
struct Fixture {
    file: &'static str,
    name: &'static str,
    single: bool,
    files: &'static [(&'static str, usize)],
    flags: &'static [&'static str],
    info_hash: &'static str,
    num_pieces: u64,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "bt-single.torrent",
        name: "hello.txt",
        single: true,
        files: &[("", 40_000)],
        flags: &[
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--piece-length",
            "16K",
        ],
        info_hash: "b8054b1501703792e5edcd88e684e112f899c348",
        num_pieces: 3,
    },
    Fixture {
        file: "bt-multi.torrent",
        name: "multi",
        single: false,
        files: &[
            ("a.txt", 1_000),
            ("empty.dat", 0),
            ("sub/b.bin", 50_000),
            ("sub/deeper/c.txt", 20_000),
        ],
        flags: &[
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--tracker",
            "udp://127.0.0.1:6969,udp://127.0.0.2:6969",
            "--web-seed",
            "http://127.0.0.1:8080/files/",
            "--comment",
            "bt fixture",
            "--private",
            "--piece-length",
            "16384",
        ],
        info_hash: "c18692e7e0c6ea3d695c392c8786f909ed0f9619",
        num_pieces: 5,
    },
    Fixture {
        file: "bt-auto.torrent",
        name: "auto",
        single: false,
        files: &[("part1.bin", 600_000), ("part2.bin", 400_000)],
        flags: &[],
        info_hash: "b3c3fe8bb303fb4c57e74e380eb8c588d55c5904",
        num_pieces: 62,
    },
];

fn payload_byte(i: usize, seed: usize) -> u8 {
    if seed % 2 == 0 {
        b"bt fixture text\n"[i % 16]
    } else {
        ((i * 7 + seed * 13) % 251) as u8
    }
}

/// Writes a fixture's payload under `dir`; returns the path to pass to `bt create`.
fn make_payload(dir: &Path, f: &Fixture) -> PathBuf {
    let root = dir.join(f.name);
    for (seed, (rel, len)) in f.files.iter().enumerate() {
        let path = if f.single {
            root.clone()
        } else {
            root.join(rel)
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*len).map(|i| payload_byte(i, seed)).collect();
        std::fs::write(path, bytes).unwrap();
    }
    root
}

fn create_fixture(dir: &Path, f: &Fixture) -> Vec<u8> {
    let payload = make_payload(dir, f);
    let out = dir.join(f.file);
    let mut args = vec![
        "create",
        payload.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-date",
    ];
    args.extend_from_slice(f.flags);
    ok(&args);
    std::fs::read(out).unwrap()
}

#[test]
fn fixtures_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let update = std::env::var_os("BT_UPDATE_FIXTURES").is_some();
    for f in FIXTURES {
        let bytes = create_fixture(tmp.path(), f);
        let path = workspace_fixtures().join(f.file);
        if update {
            std::fs::write(&path, &bytes).unwrap();
        }
        assert!(bytes.len() < 10_000, "{}: {} bytes", f.file, bytes.len());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} differs from a fresh bt create",
            f.file
        );
    }
}

#[test]
fn info_json_on_fixtures() {
    for f in FIXTURES {
        let path = workspace_fixtures().join(f.file);
        let j = info_json(path.to_str().unwrap());
        assert_eq!(j["kind"], "torrent");
        assert_eq!(j["info_hash"], f.info_hash, "{}", f.file);
        assert_eq!(j["info_hash_v2"], Value::Null);
        assert_eq!(j["name"], f.name);
        assert_eq!(j["num_pieces"], f.num_pieces, "{}", f.file);
        let total: usize = f.files.iter().map(|(_, len)| len).sum();
        assert_eq!(j["total_length"], total);
        let files = j["files"].as_array().unwrap();
        assert_eq!(files.len(), f.files.len());
        for (got, (rel, len)) in files.iter().zip(f.files) {
            let mut want = vec![f.name.to_string()];
            if !f.single {
                want.extend(rel.split('/').map(str::to_string));
            }
            assert_eq!(got["path"], serde_json::json!(want));
            assert_eq!(got["length"], *len);
        }
        assert_eq!(j["created_by"], "bt/0.1.0");
        assert_eq!(j["creation_date"], Value::Null);
    }
    let multi = info_json(
        workspace_fixtures()
            .join("bt-multi.torrent")
            .to_str()
            .unwrap(),
    );
    assert_eq!(
        multi["trackers"],
        serde_json::json!([
            ["http://127.0.0.1:6969/announce"],
            ["udp://127.0.0.1:6969", "udp://127.0.0.2:6969"]
        ])
    );
    assert_eq!(
        multi["web_seeds"],
        serde_json::json!(["http://127.0.0.1:8080/files/"])
    );
    assert_eq!(multi["private"], true);
    assert_eq!(multi["piece_length"], 16384);
    assert_eq!(multi["comment"], "bt fixture");
}

#[test]
fn info_text_on_fixture() {
    let text = ok(&[
        "info",
        workspace_fixtures()
            .join("bt-multi.torrent")
            .to_str()
            .unwrap(),
    ]);
    for needle in [
        "name:          multi",
        "info hash:     ",
        "pieces:        5 x 16 KiB",
        "private:       yes",
        "multi/sub/deeper/c.txt",
        "tier 2: udp://127.0.0.1:6969, udp://127.0.0.2:6969",
        "http://127.0.0.1:8080/files/",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn create_then_info_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("payload");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/x.bin"), vec![7u8; 70_000]).unwrap();
    std::fs::write(root.join(".hidden"), b"hidden files are included").unwrap();
    let out = tmp.path().join("out.torrent");
    let stdout = ok(&[
        "create",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tracker",
        "udp://127.0.0.1:1/announce",
        "--source",
        "TEST",
    ]);
    let j = info_json(out.to_str().unwrap());
    let hash = j["info_hash"].as_str().unwrap();
    assert!(
        stdout.contains(hash),
        "create printed {stdout:?}, info says {hash}"
    );
    assert_eq!(j["source"], "TEST");
    assert!(j["creation_date"].as_i64().unwrap() > 1_600_000_000);
    let paths: Vec<&Value> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["path"])
        .collect();
    assert_eq!(
        paths,
        [
            &serde_json::json!(["payload", ".hidden"]),
            &serde_json::json!(["payload", "dir", "x.bin"])
        ]
    );
    // The magnet link it prints parses back to the same hash.
    let m = info_json(j["magnet"].as_str().unwrap());
    assert_eq!(m["kind"], "magnet");
    assert_eq!(m["info_hash"], hash);
    assert_eq!(m["name"], "payload");
    assert_eq!(
        m["trackers"],
        serde_json::json!([["udp://127.0.0.1:1/announce"]])
    );
    assert_eq!(m["total_length"], Value::Null);

    // No overwrite without --force.
    let again = bt(&[
        "create",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(
        err.starts_with("error: ") && err.contains("already exists"),
        "{err}"
    );
}

/// `error: <file>: <problem>` on one line, exit status 2, no panic or backtrace.
fn assert_one_line_error(out: &Output, starts: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(
        err.starts_with(starts),
        "{err:?} does not start with {starts:?}"
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err:?}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn error_format_on_truncated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(workspace_fixtures().join("bt-multi.torrent")).unwrap();
    let cut = tmp.path().join("broken.torrent");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = bt(&["info", cut.to_str().unwrap()]);
    let prefix = format!(
        "error: {}: bencode: unexpected end of input at byte ",
        cut.display()
    );
    assert_one_line_error(&out, &prefix);

    let out = bt(&[
        "info",
        "--json",
        tmp.path().join("missing.torrent").to_str().unwrap(),
    ]);
    assert_one_line_error(
        &out,
        &format!("error: {}: ", tmp.path().join("missing.torrent").display()),
    );

    std::fs::write(
        &cut,
        b"d4:infod6:lengthi-1e4:name1:a12:piece lengthi16384e6:pieces0:ee",
    )
    .unwrap();
    let out = bt(&["info", cut.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &format!(
            "error: {}: `info.length` is negative (-1) at byte ",
            cut.display()
        ),
    );

    let out = bt(&["info", "magnet:?dn=nothing"]);
    assert_one_line_error(&out, "error: magnet link: ");
}
