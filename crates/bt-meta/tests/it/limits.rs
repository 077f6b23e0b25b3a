//! Each load limit of `LoadConfig` gives its error, naming the limit and the value;
//! at the limit the torrent still loads.

use bt_bencode::ErrorKind;
use bt_meta::{Error, LoadConfig, Metainfo};

/// A v1 torrent of `files` one-byte files (16 KiB pieces).
fn v1(files: usize) -> Vec<u8> {
    let mut list = String::new();
    for i in 0..files {
        let name = format!("f{i:04}");
        list.push_str(&format!("d6:lengthi1e4:pathl{}:{name}ee", name.len()));
    }
    let pieces = files.div_ceil(16384);
    let mut t = format!(
        "d4:infod5:filesl{list}e4:name1:d12:piece lengthi16384e6:pieces{}:",
        pieces * 20
    )
    .into_bytes();
    t.extend(vec![7u8; pieces * 20]);
    t.extend(b"ee");
    t
}

/// A v2-only torrent of `files` files of 1 byte: each is followed by a pad file.
fn v2(files: usize) -> Vec<u8> {
    let mut tree = String::new();
    for i in 0..files {
        tree.push_str(&format!(
            "5:f{i:04}d0:d6:lengthi1e11:pieces root32:{}ee",
            "r".repeat(32)
        ));
    }
    format!("d4:infod9:file treed{tree}e12:meta versioni2e4:name1:d12:piece lengthi16384eee")
        .into_bytes()
}

fn with(f: impl FnOnce(&mut LoadConfig)) -> LoadConfig {
    let mut c = LoadConfig::default();
    f(&mut c);
    c
}

fn limit_error(input: &[u8], config: &LoadConfig) -> (String, &'static str, u64, u64) {
    match Metainfo::from_bytes_with(input, config) {
        Err(
            e @ Error::LimitExceeded {
                limit, value, max, ..
            },
        ) => (e.to_string(), limit, value, max),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn max_files_counts_every_file_and_pad() {
    let t = v1(10);
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_files = 10)).is_ok());
    let (msg, limit, value, max) = limit_error(&t, &with(|c| c.max_files = 9));
    assert_eq!((limit, value, max), ("max_files", 10, 9));
    assert_eq!(msg, "10 files, more than the limit max_files = 9");

    // Three v2 files and the three pads that follow them (the last one too).
    let t = v2(3);
    let m = Metainfo::from_bytes_with(&t, &with(|c| c.max_files = 6)).unwrap();
    assert_eq!(m.info.files().len(), 6);
    let (_, limit, value, max) = limit_error(&t, &with(|c| c.max_files = 5));
    assert_eq!((limit, value, max), ("max_files", 6, 5));
    let (_, _, value, _) = limit_error(&t, &with(|c| c.max_files = 1));
    assert_eq!(value, 6, "the files past the limit are counted, not stored");
}

#[test]
fn max_pieces() {
    // 40,000 one-byte files in 16 KiB pieces: 3 pieces.
    let t = v1(40_000);
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_pieces = 3)).is_ok());
    let (msg, limit, value, max) = limit_error(&t, &with(|c| c.max_pieces = 2));
    assert_eq!((limit, value, max), ("max_pieces", 3, 2));
    assert!(
        msg.contains("3 pieces, more than the limit max_pieces = 2"),
        "{msg}"
    );
}

#[test]
fn max_input_len_tokens_and_depth_are_the_decoder_limits() {
    let t = v1(10);
    let len = t.len();
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_input_len = len)).is_ok());
    match Metainfo::from_bytes_with(&t, &with(|c| c.max_input_len = len - 1)) {
        Err(Error::Bencode(e)) => {
            assert_eq!(
                e.kind,
                ErrorKind::InputTooLong {
                    len,
                    limit: len - 1
                }
            );
            assert!(e.to_string().contains("(max_input_len)"), "{e}");
            assert!(e.to_string().contains(&len.to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }

    // d, info, d, files, l, then per file d, length, i1e, path, l, 5:fNNNN = 6 tokens;
    // then name, 1:d, piece length, its value, pieces, its value.
    let tokens = 5 + 6 * 10 + 6;
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_tokens = tokens)).is_ok());
    match Metainfo::from_bytes_with(&t, &with(|c| c.max_tokens = 20)) {
        Err(Error::Bencode(e)) => {
            assert_eq!(e.kind, ErrorKind::TooManyTokens { limit: 20 });
            // The 21st token is the third file's `length` key.
            assert_eq!(e.path, "info.files[2]");
            assert!(
                e.to_string().contains("more than 20 tokens (max_tokens)"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_tokens = tokens - 1)).is_err());

    // The path list of a v1 file sits 5 deep: root, info, files, the file, path.
    assert!(Metainfo::from_bytes_with(&t, &with(|c| c.max_depth = 5)).is_ok());
    match Metainfo::from_bytes_with(&t, &with(|c| c.max_depth = 4)) {
        Err(Error::Bencode(e)) => {
            assert_eq!(e.kind, ErrorKind::DepthExceeded { limit: 4 });
            assert_eq!(e.path, "info.files[0].path");
            assert!(e.to_string().contains("(max_depth)"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_are_documented_and_generous() {
    let c = LoadConfig::default();
    assert_eq!(
        (
            c.max_input_len,
            c.max_tokens,
            c.max_depth,
            c.max_files,
            c.max_pieces
        ),
        (32 << 20, 10_000_000, 100, 2_000_000, 1 << 21)
    );
    // The million-file torrent of `cargo xtask bench parse` fits: ~30 bytes and 6
    // tokens a file.
    assert!(1_000_000 * 30 < c.max_input_len && 1_000_000 * 6 + 20 < c.max_tokens);
}

#[test]
fn repeated_keys_inside_info_are_refused_at_the_repeat_but_not_outside() {
    let t = b"d4:infod6:lengthi1e4:name1:a4:name1:b12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    match Metainfo::from_bytes(t) {
        Err(Error::DuplicateKey { key, offset }) => {
            assert_eq!(key, "info.name");
            assert_eq!(&t[offset..offset + 6], b"4:name");
            assert_eq!(offset, 28);
        }
        other => panic!("{other:?}"),
    }
    // Outside `info` the first one counts, as before.
    let t = b"d7:comment1:x7:comment1:y4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
    assert_eq!(
        Metainfo::from_bytes(t).unwrap().comment.as_deref(),
        Some("x")
    );
}
