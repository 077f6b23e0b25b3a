//! Every case of `bencode/vectors.json` (see the corpus README).

use std::collections::BTreeMap;

use bt_bencode::{decode, decode_strict, DecodeOptions, ErrorKind, Value};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    counts: BTreeMap<String, usize>,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    input_hex: String,
    valid: bool,
    decoded: Option<J>,
    category: Option<String>,
    error: Option<serde_json::Value>,
    error_offset: Option<usize>,
    lenient_decoded: Option<J>,
    #[serde(default)]
    exceeds_i64: bool,
    depth: Option<usize>,
}

/// The corpus's value convention.
#[derive(Deserialize, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum J {
    Int(String),
    Bytes(String),
    List(Vec<J>),
    Dict(Vec<(String, J)>),
}

fn to_j(v: &Value<'_>) -> J {
    match v {
        Value::Int(i) => J::Int(i.to_string()),
        Value::Bytes(b) => J::Bytes(crate::hex(b)),
        Value::List(items) => J::List(items.iter().map(to_j).collect()),
        Value::Dict(d) => J::Dict(d.iter().map(|(k, v)| (crate::hex(k), to_j(v))).collect()),
    }
}

/// The corpus's name for one of our error kinds (`None`: no such name).
fn corpus_name(kind: &ErrorKind) -> Option<&'static str> {
    Some(match kind {
        ErrorKind::UnexpectedEof => "unexpected_eof",
        ErrorKind::InvalidTypeByte(_) => "invalid_type_byte",
        // A non-digit inside an integer: the corpus says a digit was expected.
        ErrorKind::ExpectedDigit | ErrorKind::ExpectedEnd => "expected_digit",
        ErrorKind::ExpectedColon => "expected_colon",
        ErrorKind::DictKeyNotString => "dict_key_not_string",
        ErrorKind::DictMissingValue => "dict_missing_value",
        ErrorKind::IntLeadingZero => "int_leading_zero",
        ErrorKind::IntNegativeZero => "int_negative_zero",
        ErrorKind::StringLengthLeadingZero => "string_length_leading_zero",
        ErrorKind::DictUnsortedKeys => "dict_unsorted_keys",
        ErrorKind::DictDuplicateKey => "dict_duplicate_key",
        ErrorKind::TrailingData => "trailing_data",
        _ => return None,
    })
}

/// The corpus `error` field as a list of names (it is a string or a list).
fn error_names(v: &Vector) -> Vec<String> {
    match &v.error {
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn bencode_vectors() {
    let Some(dir) = crate::fixtures() else { return };
    let text = std::fs::read_to_string(dir.join("bencode/vectors.json")).unwrap();
    let corpus: Corpus = serde_json::from_str(&text).unwrap();

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut checked = 0;
    let (mut offsets_match, mut offsets_differ) = (0, 0);
    for v in &corpus.vectors {
        let input = hex::decode(&v.input_hex).unwrap();
        let id = &v.id;
        let lenient = decode(&input);
        let strict = decode_strict(&input);
        let category = match (&v.category, v.valid) {
            (None, true) => "valid",
            (Some(c), false) => c.as_str(),
            _ => panic!("{id}: valid {} with category {:?}", v.valid, v.category),
        };
        *seen.entry(category).or_default() += 1;
        match category {
            "valid" if v.exceeds_i64 => {
                // Never wrapped, never 0: an overflow error in both modes.
                for r in [&lenient, &strict] {
                    assert_eq!(r.as_ref().unwrap_err().kind, ErrorKind::IntOverflow, "{id}");
                }
            }
            "valid" if v.depth.is_some_and(|d| d > 100) => {
                let limit = ErrorKind::DepthExceeded { limit: 100 };
                assert_eq!(lenient.as_ref().unwrap_err().kind, limit, "{id}");
                assert_eq!(strict.as_ref().unwrap_err().kind, limit, "{id}");
                // It is well-formed: with the limit raised it decodes.
                let deep = DecodeOptions {
                    strict: true,
                    max_depth: 2000,
                    ..DecodeOptions::default()
                };
                let mut value = deep.decode(&input).unwrap();
                let mut depth = 0;
                while let Value::List(mut items) = value {
                    depth += 1;
                    value = match items.pop() {
                        Some(inner) => inner,
                        None => break,
                    };
                }
                assert_eq!(Some(depth), v.depth, "{id}");
            }
            "valid" => {
                let expected = v.decoded.as_ref().unwrap();
                assert_eq!(&to_j(lenient.as_ref().unwrap()), expected, "{id} lenient");
                assert_eq!(&to_j(strict.as_ref().unwrap()), expected, "{id} strict");
            }
            "malformed" => {
                let e = lenient.as_ref().unwrap_err();
                assert!(strict.is_err(), "{id}: strict accepted a malformed input");
                let expected = v.error_offset.unwrap();
                if e.offset == expected {
                    let names = error_names(v);
                    assert!(
                        names
                            .iter()
                            .any(|n| Some(n.as_str()) == corpus_name(&e.kind)),
                        "{id}: error {e}, corpus says {names:?}"
                    );
                    offsets_match += 1;
                } else {
                    // The one documented difference: a string length over
                    // `max_string_len` (or past u64) is refused where the
                    // length starts, before looking for the end of the input
                    // (a caller holding a partial buffer must not take it for
                    // "need more bytes"); the corpus scan reports the end of
                    // the input instead. Anything else is a bug.
                    assert!(
                        matches!(
                            e.kind,
                            ErrorKind::StringTooLong { .. } | ErrorKind::IntOverflow
                        ),
                        "{id}: error at {} ({}), corpus says {expected}",
                        e.offset,
                        e
                    );
                    assert_eq!(error_names(v), ["unexpected_eof"], "{id}");
                    offsets_differ += 1;
                }
            }
            "non_canonical" | "trailing_data" => {
                let e = strict.as_ref().unwrap_err();
                let names = error_names(v);
                assert!(
                    names
                        .iter()
                        .any(|n| Some(n.as_str()) == corpus_name(&e.kind)),
                    "{id}: strict error {e}, corpus says {names:?}"
                );
                let expected = v.lenient_decoded.as_ref().unwrap();
                assert_eq!(&to_j(lenient.as_ref().unwrap()), expected, "{id} lenient");
            }
            other => panic!("{id}: unknown category {other}"),
        }
        checked += 1;
    }

    let total: usize = corpus.counts.values().sum();
    println!(
        "bencode vectors: {checked}/{total} ({})",
        seen.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "malformed: {offsets_match} errors match the corpus in offset and kind, \
         {offsets_differ} differ (string length over the limit, reported where it starts)"
    );
    assert_eq!(total, 157, "the corpus changed size");
    assert_eq!(checked, total);
    for (category, n) in &corpus.counts {
        assert_eq!(seen.get(category.as_str()), Some(n), "{category}");
    }
    assert_eq!(offsets_match + offsets_differ, seen["malformed"]);
    // If this changes, the note above on where the two differ needs a look.
    assert_eq!(offsets_differ, 8, "offsets differing from the corpus");
}
