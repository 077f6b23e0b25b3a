//! Real torrents from the shared corpus, at the bencode level: the `info`
//! span the decoder records is the span the corpus measured independently,
//! and strict decoding agrees with the corpus's canonical-form scan.

use bt_bencode::{decode, decode_strict, ErrorKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    torrents: Vec<Torrent>,
}

#[derive(Deserialize)]
struct Torrent {
    file: String,
    error: Option<String>,
    raw: Option<Raw>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    bencode_noncanonical: Vec<String>,
    info_offset: Option<usize>,
    info_length: Option<usize>,
}

#[test]
fn info_spans_and_strictness_match_the_corpus() {
    let Some(dir) = crate::fixtures() else { return };
    let text = std::fs::read_to_string(dir.join("torrents/manifest.json")).unwrap();
    let manifest: Manifest = serde_json::from_str(&text).unwrap();
    let (mut spans, mut strict_checked) = (0, 0);
    for t in &manifest.torrents {
        let bytes = std::fs::read(dir.join(&t.file)).unwrap();
        let name = &t.file;
        // Whatever the file, decoding returns; it never panics.
        let lenient = decode(&bytes);
        let strict = decode_strict(&bytes);
        let Some(raw) = &t.raw else { continue };
        if t.error.as_deref() == Some("bdecode_errors::depth_exceeded") {
            let limit = ErrorKind::DepthExceeded { limit: 100 };
            assert_eq!(lenient.unwrap_err().kind, limit, "{name}");
            continue;
        }
        let (Some(offset), Some(len)) = (raw.info_offset, raw.info_length) else {
            continue;
        };
        let value = lenient.unwrap_or_else(|e| panic!("{name}: {e}"));
        let span = value.as_dict().and_then(|d| d.span(b"info"));
        assert_eq!(span, Some(offset..offset + len), "{name}");
        spans += 1;
        if raw.bencode_noncanonical.is_empty() {
            assert!(strict.is_ok(), "{name}: {}", strict.unwrap_err());
        } else {
            let e = strict.unwrap_err();
            let name_of = format!("{:?}", e.kind);
            assert!(
                raw.bencode_noncanonical
                    .iter()
                    .any(|n| n.replace('_', "") == name_of.to_lowercase()),
                "{name}: strict error {e}, corpus says {:?}",
                raw.bencode_noncanonical
            );
        }
        strict_checked += 1;
    }
    println!(
        "torrents: {spans} info spans match the corpus, {strict_checked} strict verdicts agree"
    );
    assert_eq!(spans, strict_checked);
    // 185 torrents have an info span in the manifest; one is too deep for us.
    assert_eq!(spans, 184);
}
