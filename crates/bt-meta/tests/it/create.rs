//! Torrent creation: create, parse back, check every piece hash against the data.

use std::path::Path;

use bt_meta::create::{create_torrent, CreateOptions, Source};
use bt_meta::{Error, Metainfo, PieceIndex};
use sha1::{Digest, Sha1};

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Every piece hash of `m` matches the SHA-1 of the matching slice of `stream`.
fn assert_pieces_match(m: &Metainfo, stream: &[u8]) {
    let g = m.info.geometry();
    assert_eq!(g.total_len(), stream.len() as u64);
    for p in 0..g.num_pieces() {
        let i = PieceIndex(p);
        let start = g.piece_offset(i).unwrap() as usize;
        let end = start + g.piece_len(i).unwrap() as usize;
        let want: [u8; 20] = Sha1::digest(&stream[start..end]).into();
        assert_eq!(m.piece_hash(i), Some(&want), "piece {p}");
    }
}

#[test]
fn single_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let content = data(100_000, 7);
    write(dir.path(), "movie.bin", &content);
    let opts = CreateOptions {
        piece_len: Some(16384),
        trackers: vec![vec!["http://tracker.example/announce".into()]],
        creation_date: Some(1_700_000_000),
        ..CreateOptions::default()
    };
    let mut seen = Vec::new();
    let t = create_torrent(&dir.path().join("movie.bin"), &opts, |n| seen.push(n)).unwrap();
    assert_eq!(seen.last(), Some(&100_000));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    bt_bencode::decode_strict(&t.bytes).expect("canonical bencode");
    let m = Metainfo::from_bytes(&t.bytes).unwrap();
    assert_eq!(m.info_hash, Some(t.info_hash));
    assert!(m.info.single_file);
    assert_eq!(m.info.name, "movie.bin");
    assert_eq!(m.info.num_pieces(), 7);
    assert_eq!(
        m.announce.as_deref(),
        Some("http://tracker.example/announce")
    );
    assert!(
        m.announce_list().is_empty(),
        "one tracker: no announce-list"
    );
    assert_eq!(m.created_by.as_deref(), Some("bt/0.1.0"));
    assert_eq!(m.creation_date, Some(1_700_000_000));
    assert_pieces_match(&m, &content);
}

#[test]
fn multi_file_spanning_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("payload");
    // Written out of order; the torrent orders them by path.
    let files: &[(&str, usize)] = &[
        ("z", 1),
        ("sub/c", 40_000),
        ("a", 10_000),
        ("sub/b", 0),
        (".hidden", 5),
        ("sub/deeper/d", 16_384),
    ];
    for (i, (rel, len)) in files.iter().enumerate() {
        write(&root, rel, &data(*len, i as u8));
    }
    let order = [".hidden", "a", "sub/b", "sub/c", "sub/deeper/d", "z"];
    let mut stream = Vec::new();
    for rel in order {
        stream.extend(std::fs::read(root.join(rel)).unwrap());
    }
    let opts = CreateOptions {
        piece_len: Some(16384),
        trackers: vec![
            vec![
                "udp://a.example:6969".into(),
                "http://b.example/announce".into(),
            ],
            vec!["http://c.example/announce".into()],
        ],
        web_seeds: vec!["http://seed.example/files/".into()],
        private: true,
        comment: Some("a comment".into()),
        source: Some("SRC".into()),
        threads: 3,
        ..CreateOptions::default()
    };
    let t = create_torrent(&root, &opts, |_| {}).unwrap();
    let m = Metainfo::from_bytes(&t.bytes).unwrap();
    assert_eq!(m.info_hash, Some(t.info_hash));
    assert_eq!(m.info.name, "payload");
    let paths: Vec<String> = m.info.files().iter().map(|f| f.display_path()).collect();
    let want: Vec<String> = order.iter().map(|p| format!("payload/{p}")).collect();
    assert_eq!(paths, want);
    assert_eq!(m.announce.as_deref(), Some("udp://a.example:6969"));
    assert_eq!(m.trackers(), opts.trackers);
    assert_eq!(m.web_seeds(), opts.web_seeds);
    assert!(m.info.private);
    assert_eq!(m.info.source.as_deref(), Some("SRC"));
    assert_eq!(m.comment.as_deref(), Some("a comment"));
    assert_pieces_match(&m, &stream);

    // Thread count does not change a byte.
    for threads in [1, 2, 8] {
        let again = create_torrent(
            &root,
            &CreateOptions {
                threads,
                ..opts.clone()
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(again.bytes, t.bytes, "threads {threads}");
    }
}

#[test]
fn large_pieces_many_batches() {
    // More pieces than one hashing batch, with the last piece short.
    let dir = tempfile::tempdir().unwrap();
    let content = data(9 * 1024 * 1024 + 12345, 3);
    write(dir.path(), "big/one", &content[..5_000_000]);
    write(dir.path(), "big/two", &content[5_000_000..]);
    let src = Source::scan(&dir.path().join("big")).unwrap();
    assert_eq!(src.total_len(), content.len() as u64);
    let t = src
        .create(
            &CreateOptions {
                piece_len: Some(65536),
                ..Default::default()
            },
            |_| {},
        )
        .unwrap();
    let m = Metainfo::from_bytes(&t.bytes).unwrap();
    assert_pieces_match(&m, &content);
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    assert!(matches!(
        create_torrent(&dir.path().join("empty"), &CreateOptions::default(), |_| {}),
        Err(Error::EmptyTorrent)
    ));
    write(dir.path(), "f", b"x");
    for bad in [1000, 8192, 32 * 1024 * 1024] {
        let opts = CreateOptions {
            piece_len: Some(bad),
            ..Default::default()
        };
        assert!(matches!(
            create_torrent(&dir.path().join("f"), &opts, |_| {}),
            Err(Error::InvalidOption(_))
        ));
    }
    let missing = create_torrent(&dir.path().join("nope"), &CreateOptions::default(), |_| {});
    assert!(matches!(missing, Err(Error::Io { .. })));
}

#[cfg(unix)]
#[test]
fn symlink_loop_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p/file", b"abc");
    std::os::unix::fs::symlink(dir.path().join("p"), dir.path().join("p/loop")).unwrap();
    let e = create_torrent(&dir.path().join("p"), &CreateOptions::default(), |_| {}).unwrap_err();
    assert!(e.to_string().contains("link back"), "{e}");
}
