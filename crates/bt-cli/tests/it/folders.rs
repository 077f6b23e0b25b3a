//! `bt download` into a folder it cannot use: a one-line error at start, nothing written.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// uid and gid of `nobody` on Debian, used to drop root's privileges.
const NOBODY: u32 = 65534;

fn fixture_torrent() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bt-single.torrent")
}

fn running_as_root() -> bool {
    // The owner of /proc/self is this process's effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs `cmd`, killing it after 60 s (a `bt download` that does not fail at start would
/// otherwise wait for its unreachable peer forever).
fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "bt download did not fail at start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Linux's "text file busy": a freshly copied binary whose write handle a concurrent
/// fork (another test thread) still holds.
const ETXTBSY: i32 = 26;

/// Spawns `cmd`, retrying for a while if the binary is still busy being written.
fn spawn(cmd: &mut Command) -> std::process::Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other.expect("run bt"),
        }
    }
}

/// `bt download <fixture> -o <dir>` with an unreachable peer and no DHT.
fn download_into(dir: &Path) -> Command {
    download_with(Path::new(env!("CARGO_BIN_EXE_bt")), &fixture_torrent(), dir)
}

/// `<bt> download <torrent> -o <dir>` with an unreachable peer and no DHT.
fn download_with(bt: &Path, torrent: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bt);
    cmd.arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(dir)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "127.0.0.1:9",
            "--no-dht",
        ])
        .env_remove("RUST_LOG");
    cmd
}

/// Exit status 2, one `error: ` line on stderr naming `path` and saying `what` (once).
fn assert_error(out: &Output, path: &Path, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.contains(&path.display().to_string()), "{err:?}");
    assert_eq!(err.matches(what).count(), 1, "{err:?}: {what:?} once");
    assert!(!err.contains("panicked"), "{err:?}");
}

/// A read-only download folder: `bt download` stops at once with an error naming it and
/// creates nothing there. As root (where mode 0555 does not stop writes) bt runs as
/// `nobody` instead, so the folder really is read-only to it.
#[test]
fn read_only_download_folder_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    // `nobody` must reach the folder, the binary and the torrent when bt runs as it: the
    // workspace may be where it cannot (a clean clone in a private temp dir), so both are
    // copied beside the folder.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bt = tmp.path().join("bt");
    // A hard link has no write handle to race with; a copy when on another filesystem.
    if std::fs::hard_link(env!("CARGO_BIN_EXE_bt"), &bt).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_bt"), &bt).unwrap();
    }
    std::fs::set_permissions(&bt, std::fs::Permissions::from_mode(0o755)).unwrap();
    let torrent = tmp.path().join("t.torrent");
    std::fs::copy(fixture_torrent(), &torrent).unwrap();
    std::fs::set_permissions(&torrent, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ro = tmp.path().join("read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let as_user = |dir: &Path| {
        let mut cmd = download_with(&bt, &torrent, dir);
        if running_as_root() {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        cmd
    };
    let out = run(as_user(&ro));
    assert_error(&out, &ro, "Permission denied");
    let left: Vec<_> = std::fs::read_dir(&ro).unwrap().collect();
    assert!(
        left.is_empty(),
        "bt wrote into the read-only folder: {left:?}"
    );

    // A folder to be created under the read-only one.
    let below = ro.join("new");
    let out = run(as_user(&below));
    assert_error(&out, &below, "Permission denied");
    assert!(!below.exists());
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A download folder that is a regular file, or would have to be created under one.
#[test]
fn download_folder_that_is_a_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a folder").unwrap();
    for dir in [file.clone(), file.join("below")] {
        let out = run(download_into(&dir));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{err:?}"
        );
        assert!(err.contains(&dir.display().to_string()), "{err:?}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");
}

/// SIGTERM stops `bt download` cleanly: it says how far it got, exits with the error
/// status, and leaves a resume state for the next run in `DIR/.bt/<info-hash>.resume`.
#[test]
fn sigterm_saves_the_resume_state() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dl");
    let mut cmd = download_into(&dir);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = spawn(&mut cmd);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The progress line shows the torrent is running (signal handlers are set by then).
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("downloading")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no progress line from bt download ({e}): {seen:?}");
            }
        }
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "bt download ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = rx.try_iter().collect();
    let err = rest.join("\n");
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("interrupted with 0 of 3 pieces"),
        "{seen:?} {err}"
    );
    let resume = dir
        .join(".bt")
        .join("b8054b1501703792e5edcd88e684e112f899c348.resume");
    assert!(resume.is_file(), "no resume state at {}", resume.display());
}
