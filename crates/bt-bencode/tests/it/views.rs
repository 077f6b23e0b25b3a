//! The views (`DecodeOptions::decode_ref`) against the tree decoder: for any input
//! and options, the same verdict and the same error (kind, offset, key path), and
//! when both accept, the same data at the same offsets.

use bt_bencode::{DecodeOptions, ErrorKind, Kind, PathStep, Value, ValueRef};
use proptest::prelude::*;

/// Keys of the generated dictionaries.
const KEYS: &[&[u8]] = &[b"a", b"b", b"c", b""];

/// Bencode text in lenient shapes: keys from a small alphabet (so repeated and
/// unsorted keys are common), integers with leading zeros and `-0`, string lengths
/// with leading zeros.
fn lenient_text() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| format!("i{n}e").into_bytes()),
        (0u8..3, 0u32..1000)
            .prop_map(|(zeros, n)| format!("i{}{n}e", "0".repeat(zeros.into())).into_bytes()),
        Just(b"i-0e".to_vec()),
        (0u8..2, proptest::collection::vec(any::<u8>(), 0..8)).prop_map(|(zeros, b)| {
            let mut out = format!("{}{}:", "0".repeat(zeros.into()), b.len()).into_bytes();
            out.extend(b);
            out
        }),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                let mut out = b"l".to_vec();
                items.iter().for_each(|i| out.extend(i));
                out.push(b'e');
                out
            }),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |entries| {
                    let mut out = b"d".to_vec();
                    for (k, v) in entries {
                        out.extend(format!("{}:", k.len()).as_bytes());
                        out.extend(k);
                        out.extend(v);
                    }
                    out.push(b'e');
                    out
                }
            ),
        ]
    })
}

/// Mutations of `text`: a byte changed, a cut, a byte inserted.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (lenient_text(), any::<usize>(), any::<u8>(), 0u8..4).prop_map(|(mut t, at, b, how)| {
        let at = at % (t.len() + 1);
        match how {
            0 => {}
            1 => t.truncate(at),
            2 if at < t.len() => t[at] = b"ilde0123456789:-x"[usize::from(b) % 17],
            _ => t.insert(at, b"ilde0:-"[usize::from(b) % 7]),
        }
        t
    })
}

fn option_sets() -> Vec<DecodeOptions> {
    vec![
        DecodeOptions::default(),
        DecodeOptions::strict(),
        DecodeOptions {
            reject_duplicate_keys: true,
            ..DecodeOptions::default()
        },
        DecodeOptions {
            max_depth: 2,
            max_tokens: 7,
            max_string_len: 4,
            ..DecodeOptions::default()
        },
    ]
}

/// The view and the tree hold the same data; every dictionary value sits at the
/// tree's span.
fn same(view: ValueRef<'_>, tree: &Value<'_>) -> bool {
    match tree {
        Value::Int(i) => view.as_int() == Some(*i) && view.kind() == Kind::Int,
        Value::Bytes(b) => view.as_bytes() == Some(&b[..]),
        Value::List(items) => view.as_list().is_some_and(|l| {
            l.len() == items.len() && l.iter().zip(items).all(|(v, t)| same(v, t))
        }),
        Value::Dict(d) => view.as_dict().is_some_and(|dv| {
            dv.len() == d.len()
                && dv.iter().zip(d.entries()).all(|(ev, et)| {
                    ev.key == &et.key[..] && ev.value.span() == et.span && same(ev.value, &et.value)
                })
        }),
    }
}

fn check(input: &[u8]) {
    for opts in option_sets() {
        let tree = opts.decode_prefix(input);
        let view = opts.decode_ref_prefix(input);
        match (&tree, &view) {
            (Ok((t, tree_end)), Ok((v, view_end))) => {
                assert_eq!(tree_end, view_end);
                assert!(
                    same(*v, t),
                    "{:?}: {t:?} vs {v:?}",
                    String::from_utf8_lossy(input)
                );
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(input)),
            _ => panic!(
                "{:?} under {opts:?}: tree {:?}, view {:?}",
                String::from_utf8_lossy(input),
                tree.map(|(_, e)| e),
                view.map(|(_, e)| e)
            ),
        }
        assert_eq!(opts.decode(input).is_ok(), opts.decode_ref(input).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn views_agree_with_the_tree_on_lenient_text(input in lenient_text()) {
        check(&input);
    }

    #[test]
    fn views_agree_with_the_tree_on_mutated_text(input in mutated()) {
        check(&input);
    }

    #[test]
    fn views_agree_with_the_tree_on_garbage(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        check(&input);
    }
}

#[test]
fn path_to_names_the_value_at_an_offset() {
    let input = b"d4:infod5:filesld6:lengthi1eed6:lengthi-1eeeee";
    let root = DecodeOptions::default().decode_ref(input).unwrap();
    let at = 38; // i-1e
    assert_eq!(
        root.path_to(at),
        [
            PathStep::Key(b"info"),
            PathStep::Key(b"files"),
            PathStep::Index(1),
            PathStep::Key(b"length")
        ]
    );
}

#[test]
fn token_limit_counts_keys_and_values() {
    let opts = DecodeOptions {
        max_tokens: 4,
        ..DecodeOptions::default()
    };
    // d, key a, i1e, key b = 4 tokens; i2e is the fifth.
    for e in [
        opts.decode(b"d1:ai1e1:bi2ee").unwrap_err(),
        opts.decode_ref(b"d1:ai1e1:bi2ee").unwrap_err(),
    ] {
        assert_eq!(
            (e.kind.clone(), e.offset, e.path.as_str()),
            (ErrorKind::TooManyTokens { limit: 4 }, 10, "b")
        );
        assert!(
            e.to_string().contains("more than 4 tokens (max_tokens)"),
            "{e}"
        );
    }
    assert!(opts.decode_ref(b"li1ei2ei3ee").is_ok());
    assert!(opts.decode_ref(b"li1ei2ei3ei4ee").is_err());
}

#[test]
fn duplicate_keys_are_refused_at_the_second_one_when_asked() {
    let opts = DecodeOptions {
        reject_duplicate_keys: true,
        ..DecodeOptions::default()
    };
    // Unsorted, with `a` twice: reported at the second `a` (offset 13).
    let input = b"d1:bi1e1:ai2e1:ai3ee";
    for e in [
        opts.decode(input).unwrap_err(),
        opts.decode_ref(input).unwrap_err(),
    ] {
        assert_eq!((e.kind, e.offset), (ErrorKind::DictDuplicateKey, 13));
    }
    assert!(DecodeOptions::default().decode_ref(input).is_ok());
    assert!(opts.decode_ref(b"d1:bi1e1:ai2ee").is_ok());
}

#[test]
fn a_million_empty_lists_cost_nothing_to_check() {
    let mut input = b"l".to_vec();
    for _ in 0..1_000_000 {
        input.extend(b"le");
    }
    input.push(b'e');
    let root = DecodeOptions::default().decode_ref(&input).unwrap();
    assert_eq!(root.as_list().unwrap().len(), 1_000_000);
}
