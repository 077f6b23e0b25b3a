//! `bt add`, `ls`, `show`, `set`, `start`, `stop` and `rm` driving a `bt daemon` that runs
//! as a child process on loopback, the errors a user sees for an unknown hash and for an
//! address nothing listens on, and the daemon's clean exit on SIGTERM.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bt_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bt"));
    cmd.env_remove("RUST_LOG").env_remove("BT_API");
    cmd
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `bt daemon` child process and its API's URL.
struct Daemon {
    child: Child,
    api: String,
    log: PathBuf,
}

impl Daemon {
    fn start(state: &Path, downloads: &Path) -> Daemon {
        let port = free_port();
        let log = state.join("daemon.log");
        let child = bt_cmd()
            .args(["daemon", "--state-dir"])
            .arg(state)
            .arg("--download-dir")
            .arg(downloads)
            .args(["--listen", "127.0.0.1:0", "--no-dht", "--api"])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("run bt daemon");
        let mut d = Daemon {
            child,
            api: format!("http://127.0.0.1:{port}"),
            log,
        };
        // Ready once `bt ls` gets an answer.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if d.bt(&["ls", "--json"]).status.success() {
                return d;
            }
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("bt daemon exited ({status}): {}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no API after 60 s: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `bt <args> --api <this daemon>`.
    fn bt(&self, args: &[&str]) -> Output {
        bt_cmd()
            .args(args)
            .args(["--api", &self.api])
            .output()
            .expect("run bt")
    }

    /// Like [`Daemon::bt`], which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.bt(args);
        assert!(
            out.status.success(),
            "bt {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `bt ls --json`.
    fn list(&self) -> Vec<Value> {
        match serde_json::from_str(&self.ok(&["ls", "--json"])).unwrap() {
            Value::Array(rows) => rows,
            other => panic!("bt ls --json printed {other}"),
        }
    }

    /// Waits until the only torrent's state is one of `states`; returns it.
    fn wait_state(&self, states: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.list();
            assert_eq!(rows.len(), 1, "{rows:?}");
            if states.iter().any(|s| rows[0]["state"] == *s) {
                return rows[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "not {states:?} after 30 s: {}",
                rows[0]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the daemon to exit; its exit status must be 0.
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "bt daemon still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log_text();
        assert!(status.success(), "bt daemon exited with {status}: {log}");
        assert!(log.contains("bt daemon: stopped"), "{log}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test must not leave its daemon running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Exit status 2 and one line on stderr that starts with `starts`.
fn assert_error(out: &Output, starts: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(starts),
        "{err:?} does not start with {starts:?}"
    );
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[test]
fn the_cli_drives_a_running_daemon() {
    let state = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    // The payload is already where the daemon saves it, so starting the torrent seeds it.
    let payload = downloads.path().join("payload.bin");
    std::fs::write(
        &payload,
        (0..100_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let torrent = work.path().join("payload.torrent");
    let out = bt_cmd()
        .arg("create")
        .arg(&payload)
        .arg("-o")
        .arg(&torrent)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let info: Value = serde_json::from_slice(
        &bt_cmd()
            .args(["info", "--json"])
            .arg(&torrent)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let hash = info["info_hash"].as_str().unwrap().to_string();
    let prefix = &hash[..6];

    let d = Daemon::start(state.path(), downloads.path());
    let torrent_arg = torrent.to_str().unwrap();

    // Added stopped: listed as stoppedDL, with its tag.
    let added = d.ok(&["add", torrent_arg, "--stopped", "--tag", "first"]);
    assert_eq!(added, format!("{hash}\n"));
    let t = d.wait_state(&["stoppedDL"]);
    assert_eq!(t["hash"], hash);
    assert_eq!(t["name"], "payload.bin");
    assert_eq!(t["size"], 100_000);
    assert_eq!(t["tags"], "first");
    let table = d.ok(&["ls"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&hash[..8]) && l.contains("stoppedDL")),
        "{table}"
    );

    // Adding it again is no error, and prints the same hash.
    assert_eq!(d.ok(&["add", torrent_arg]), format!("{hash}\n"));
    assert_eq!(d.list().len(), 1);

    // Category (created on the way) and tags, by a prefix of the hash.
    d.ok(&[
        "set",
        prefix,
        "--category",
        "movies",
        "--add-tag",
        "second",
        "--remove-tag",
        "first",
    ]);
    let t = &d.list()[0];
    assert_eq!(
        (&t["category"], &t["tags"]),
        (&"movies".into(), &"second".into())
    );
    let in_movies = d.ok(&["ls", "--json", "--category", "movies"]);
    assert_eq!(
        serde_json::from_str::<Value>(&in_movies).unwrap()[0]["hash"],
        hash
    );
    let in_tv = d.ok(&["ls", "--json", "--category", "tv"]);
    assert_eq!(
        serde_json::from_str::<Value>(&in_tv).unwrap(),
        serde_json::json!([])
    );

    // Started, it finds its data complete and seeds.
    assert!(d
        .ok(&["start", prefix])
        .starts_with(&format!("started {hash}")));
    let t = d.wait_state(&["stalledUP", "uploading"]);
    assert_eq!(t["progress"], 1.0);

    let shown: Value = serde_json::from_str(&d.ok(&["show", prefix, "--json"])).unwrap();
    assert_eq!(shown["properties"]["hash"], hash);
    assert_eq!(
        shown["properties"]["pieces_have"],
        shown["properties"]["pieces_num"]
    );
    assert_eq!(shown["files"][0]["name"], "payload.bin");
    assert_eq!(shown["files"][0]["size"], 100_000);
    assert!(shown["trackers"].is_array());
    let text = d.ok(&["show", &hash]);
    for needle in [
        "name:          payload.bin\n".to_string(),
        format!("info hash:     {hash}\n"),
        "category:      movies\n".to_string(),
        "payload.bin\n".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in:\n{text}");
    }

    assert!(d
        .ok(&["stop", "--all"])
        .starts_with(&format!("stopped {hash}")));
    d.wait_state(&["stoppedUP"]);

    // An unknown hash, a prefix no torrent has, and one that is not hex.
    let unknown = if hash.starts_with('f') {
        "0000"
    } else {
        "ffff"
    };
    assert_error(
        &d.bt(&["show", unknown]),
        &format!("error: no torrent {unknown}\n"),
    );
    let unknown_full = unknown.repeat(10);
    assert_error(
        &d.bt(&["stop", &unknown_full]),
        &format!("error: no torrent {unknown_full}\n"),
    );
    assert_error(
        &d.bt(&["rm", "not-a-hash"]),
        "error: \"not-a-hash\" is not an info-hash",
    );

    // Removed with its data.
    assert!(d
        .ok(&["rm", prefix, "--delete-data"])
        .starts_with(&format!("removed {hash}")));
    assert_eq!(d.list(), Vec::<Value>::new());
    assert!(!payload.exists(), "--delete-data left the payload");

    // BT_API names the daemon as --api does.
    let out = bt_cmd()
        .args(["ls", "--json"])
        .env("BT_API", &d.api)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[]\n", "{out:?}");

    // Nothing at the address: one line naming it.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = bt_cmd().args(["ls", "--api", &closed]).output().unwrap();
    assert_error(&out, &format!("error: no bt daemon at {closed}: "));
    let out = bt_cmd()
        .args(["stop", "--all"])
        .env("BT_API", &closed)
        .output()
        .unwrap();
    assert_error(&out, &format!("error: no bt daemon at {closed}: "));

    d.terminate();
}
