//! `bt download --only`, `--sequential` and `--first-last` against `bt seed` on loopback:
//! the chosen file arrives byte-identical and the other is not fetched; the ordered
//! flags still fetch everything.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{create_fixture, make_payload, FIXTURES};

/// `bt seed` of `torrent` from `data`, on a free loopback port; killed on drop.
struct Seeder {
    child: Child,
    port: u16,
}

impl Drop for Seeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seed(torrent: &Path, data: &Path) -> Seeder {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_bt"))
        .arg("seed")
        .arg(torrent)
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-dht"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "bt seed never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Seeder { child, port }
}

/// `bt download torrent -o out --peer seeder extra...`, which must exit 0 within 60 s.
fn download(torrent: &Path, out: &Path, seeder: &Seeder, extra: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bt"))
        .arg("download")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--listen", "127.0.0.1:0", "--no-dht", "--peer"])
        .arg(format!("127.0.0.1:{}", seeder.port))
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "bt download {extra:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn only_fetches_the_chosen_file_and_the_ordered_flags_fetch_everything() {
    let tmp = tempfile::tempdir().unwrap();
    // bt-auto: part1.bin (600,000 bytes) and part2.bin (400,000), 16 KiB pieces.
    let fixture = FIXTURES.iter().find(|f| f.name == "auto").unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    make_payload(&data, fixture);
    let torrent = tmp.path().join("auto.torrent");
    std::fs::write(&torrent, create_fixture(&tmp.path().join("make"), fixture)).unwrap();
    let seeder = seed(&torrent, &data);

    let only = tmp.path().join("only");
    download(&torrent, &only, &seeder, &["--only", "1"]);
    let want = std::fs::read(data.join("auto/part2.bin")).unwrap();
    assert_eq!(std::fs::read(only.join("auto/part2.bin")).unwrap(), want);
    let skipped = std::fs::read(only.join("auto/part1.bin")).unwrap_or_default();
    let original = std::fs::read(data.join("auto/part1.bin")).unwrap();
    // Only the piece it shares with part2.bin may have come: its last 16 KiB at most.
    let fetched = skipped
        .iter()
        .zip(&original)
        .filter(|(a, b)| a == b && **a != 0)
        .count();
    assert!(
        fetched <= 16384,
        "{fetched} bytes of the skipped file were fetched"
    );

    let ordered = tmp.path().join("ordered");
    download(
        &torrent,
        &ordered,
        &seeder,
        &["--sequential", "--first-last"],
    );
    for f in ["part1.bin", "part2.bin"] {
        assert_eq!(
            std::fs::read(ordered.join("auto").join(f)).unwrap(),
            std::fs::read(data.join("auto").join(f)).unwrap(),
            "{f}"
        );
    }

    let bad = crate::bt(&[
        "download",
        torrent.to_str().unwrap(),
        "-o",
        tmp.path().join("bad").to_str().unwrap(),
        "--only",
        "2",
        "--no-dht",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--only 2: the torrent has 2 files"), "{err}");
}
