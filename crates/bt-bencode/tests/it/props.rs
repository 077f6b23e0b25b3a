//! Property tests: round trips, and garbage gives an error, never a panic or
//! work out of proportion to the input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bt_bencode::{
    as_bytes, decode, decode_strict, from_bytes, from_bytes_strict, to_bytes, DecodeOptions, Dict,
    ErrorKind, Value,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Value trees up to 4 levels deep; dictionaries built with `Dict::insert`,
/// so their keys are sorted and unique.
fn arb_value() -> impl Strategy<Value = Value<'static>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1)].prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::owned_bytes),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..6), inner), 0..6)
                .prop_map(|entries| {
                    let mut d = Dict::new();
                    for (k, v) in entries {
                        d.insert(k, v);
                    }
                    Value::Dict(d)
                }),
        ]
    })
}

/// Every dictionary entry's span, sliced from `input`, is the encoding of its value.
fn check_spans(input: &[u8], v: &Value<'_>) {
    match v {
        Value::List(items) => items.iter().for_each(|i| check_spans(input, i)),
        Value::Dict(d) => {
            for e in d.entries() {
                assert_eq!(&input[e.span.clone()], &e.value.encode()[..]);
                check_spans(input, &e.value);
            }
        }
        _ => {}
    }
}

/// Number of values in the tree.
fn nodes(v: &Value<'_>) -> usize {
    1 + match v {
        Value::List(items) => items.iter().map(nodes).sum(),
        Value::Dict(d) => d.iter().map(|(_, v)| 1 + nodes(v)).sum(),
        _ => 0,
    }
}

/// Bytes that look like bencode often enough to get past the first byte.
fn bencodeish() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(b"ilde0123456789:-".to_vec()),
            1 => any::<u8>(),
        ],
        0..200,
    )
}

fn never_panics_and_stays_proportional(input: &[u8]) {
    for opts in [DecodeOptions::default(), DecodeOptions::strict()] {
        if let Ok((v, used)) = opts.decode_prefix(input) {
            // Every value takes at least two input bytes, and byte strings are
            // borrowed: the tree is never bigger than the input.
            assert!(
                nodes(&v) * 2 <= used,
                "{} nodes from {used} bytes",
                nodes(&v)
            );
            // Re-decoding the encoding leniently gives the same data back
            // (duplicates and order kept).
            let again = v.encode();
            assert!(decode(&again).unwrap().content_eq(&v));
            if opts.strict {
                // A canonical input re-encodes to exactly the same bytes.
                assert_eq!(again, &input[..used]);
            }
        }
    }
}

proptest! {
    #[test]
    fn encode_then_strict_decode_round_trips(v in arb_value()) {
        let bytes = v.encode();
        let back = decode_strict(&bytes).unwrap();
        prop_assert!(back.content_eq(&v), "{:?} != {:?}", back, v);
        prop_assert!(decode(&bytes).unwrap().content_eq(&v));
        check_spans(&bytes, &back);
        // Typed: a Value through serde's Serialize is the same canonical bytes.
        prop_assert_eq!(to_bytes(&v).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        never_panics_and_stays_proportional(&input);
    }

    #[test]
    fn bencode_like_bytes_never_panic(input in bencodeish()) {
        never_panics_and_stays_proportional(&input);
    }

    #[test]
    fn typed_struct_round_trips(s in arb_sample()) {
        let bytes = to_bytes(&s).unwrap();
        prop_assert!(decode_strict(&bytes).is_ok());
        prop_assert_eq!(from_bytes_strict::<Sample>(&bytes).unwrap(), s.clone());
        prop_assert_eq!(from_bytes::<Sample>(&bytes).unwrap(), s);
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Event {
    Started,
    Stopped,
    Completed,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    size: u64,
    offset: i32,
    flag: bool,
    comment: Option<String>,
    #[serde(with = "as_bytes")]
    hash: [u8; 20],
    #[serde(with = "as_bytes")]
    blob: Vec<u8>,
    tags: Vec<String>,
    counts: BTreeMap<String, u16>,
    event: Event,
    nested: Vec<(u8, Option<i64>)>,
}

fn arb_sample() -> impl Strategy<Value = Sample> {
    (
        (".{0,12}", 0..=i64::MAX as u64, any::<i32>(), any::<bool>()),
        (
            proptest::option::of(".{0,8}"),
            any::<[u8; 20]>(),
            proptest::collection::vec(any::<u8>(), 0..32),
        ),
        (
            proptest::collection::vec(".{0,6}", 0..4),
            proptest::collection::btree_map(".{0,6}", any::<u16>(), 0..4),
            prop_oneof![
                Just(Event::Started),
                Just(Event::Stopped),
                Just(Event::Completed)
            ],
            proptest::collection::vec((any::<u8>(), any::<i64>().prop_map(Some)), 0..4),
        ),
    )
        .prop_map(
            |((name, size, offset, flag), (comment, hash, blob), (tags, counts, event, nested))| {
                Sample {
                    name,
                    size,
                    offset,
                    flag,
                    comment,
                    hash,
                    blob,
                    tags,
                    counts,
                    event,
                    nested,
                }
            },
        )
}

/// Runs `f` and checks it finished well within `limit` (generous: the CI
/// machine is shared; the point is "immediately", not a benchmark).
fn quick<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    out
}

#[test]
fn huge_string_length_in_a_small_input_errors_immediately() {
    let input = b"4294967296:0123456789";
    assert_eq!(input.len(), 21);
    let e = quick(Duration::from_millis(50), || decode(input).unwrap_err());
    assert!(
        matches!(
            e.kind,
            ErrorKind::StringTooLong {
                len: 4294967296,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.offset, 0);
    // With the string limit lifted, the input's end still bounds it: the
    // bytes are borrowed, never copied or reserved.
    let unlimited = DecodeOptions {
        max_string_len: usize::MAX,
        ..DecodeOptions::default()
    };
    let e = quick(Duration::from_millis(50), || {
        unlimited.decode(input).unwrap_err()
    });
    assert_eq!((e.kind, e.offset), (ErrorKind::UnexpectedEof, 21));
    // The same through the typed decoder.
    let e = from_bytes::<Sample>(b"d4:name4294967296:xe").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::StringTooLong { .. }), "{e}");
    assert_eq!(e.path, "name");
}

#[test]
fn deep_nesting_is_refused_at_the_limit_without_recursing_further() {
    for unit in [&b"l"[..], b"d1:a"] {
        let input = unit.repeat(1 << 18);
        let e = quick(Duration::from_secs(2), || decode(&input).unwrap_err());
        assert_eq!(e.kind, ErrorKind::DepthExceeded { limit: 100 });
        assert_eq!(e.offset, 100 * unit.len());
    }
}

#[test]
fn input_over_the_limit_is_refused_before_reading() {
    let small = DecodeOptions {
        max_input_len: 10,
        ..DecodeOptions::default()
    };
    let e = small.decode(b"l1:a1:b1:c1:de").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InputTooLong { len: 14, limit: 10 });
    assert!(small.decode(b"l1:a1:b1:ce").is_err());
    assert!(small.decode(b"l1:a1:b0:e").is_ok());
}
