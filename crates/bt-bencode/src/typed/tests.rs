use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    as_bytes, decode, from_bytes, from_bytes_strict, from_value, to_bytes, to_value, DecodeOptions,
    Dict, ErrorKind, Value,
};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Torrent {
    // Declared out of order on purpose: the encoding must sort them.
    info: Info,
    announce: String,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    comment: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Info {
    name: String,
    #[serde(rename = "piece length")]
    piece_length: u32,
    #[serde(with = "as_bytes")]
    pieces: Vec<u8>,
    private: Option<bool>,
    files: Vec<File>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File {
    length: u64,
    path: Vec<String>,
}

fn sample() -> Torrent {
    Torrent {
        info: Info {
            name: "dir".into(),
            piece_length: 16384,
            pieces: vec![0xff; 40],
            private: Some(true),
            files: vec![
                File {
                    length: 5,
                    path: vec!["a".into(), "b.txt".into()],
                },
                File {
                    length: 0,
                    path: vec!["c".into()],
                },
            ],
        },
        announce: "http://t/announce".into(),
        creation_date: None,
        comment: Some("hi".into()),
    }
}

/// Decodes `input` as `T` leniently and returns the error's (offset, path, message).
fn typed_err<'de, T: Deserialize<'de> + std::fmt::Debug>(
    input: &'de [u8],
) -> (usize, String, String) {
    let e = from_bytes::<T>(input).unwrap_err();
    (e.offset, e.path.clone(), e.to_string())
}

#[test]
fn struct_round_trip_is_canonical() {
    let t = sample();
    let bytes = to_bytes(&t).unwrap();
    assert!(crate::decode_strict(&bytes).is_ok(), "not canonical");
    assert!(bytes.starts_with(b"d8:announce17:http://t/announce7:comment2:hi4:infod5:files"));
    assert!(
        !bytes.windows(13).any(|w| w == b"creation date"),
        "None written"
    );
    assert_eq!(from_bytes::<Torrent>(&bytes).unwrap(), t);
    assert_eq!(from_bytes_strict::<Torrent>(&bytes).unwrap(), t);
}

#[test]
fn golden_encodings() {
    #[derive(Serialize)]
    struct S {
        z: i8,
        a: bool,
        m: BTreeMap<u16, &'static str>,
    }
    let mut m = BTreeMap::new();
    m.insert(10, "x");
    m.insert(9, "y");
    for (bytes, expected) in [
        (to_bytes(&-3i8).unwrap(), &b"i-3e"[..]),
        (to_bytes(&u64::from(u32::MAX)).unwrap(), b"i4294967295e"),
        (to_bytes("spam").unwrap(), b"4:spam"),
        (to_bytes(&'é').unwrap(), "2:é".as_bytes()),
        (to_bytes(&vec![1u8, 2]).unwrap(), b"li1ei2ee"),
        (to_bytes(&(1, "a")).unwrap(), b"li1e1:ae"),
        (to_bytes(&Some(5)).unwrap(), b"i5e"),
        // keys sorted as raw bytes: "10" < "9"
        (
            to_bytes(&S { z: 1, a: true, m }).unwrap(),
            b"d1:ai1e1:md2:101:x1:91:ye1:zi1ee",
        ),
    ] {
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(expected)
        );
    }
}

#[test]
fn integers_are_range_checked() {
    assert_eq!(from_bytes::<u8>(b"i255e").unwrap(), 255);
    assert_eq!(from_bytes::<i8>(b"i-128e").unwrap(), -128);
    assert_eq!(
        from_bytes::<u64>(b"i9223372036854775807e").unwrap(),
        i64::MAX as u64
    );
    assert_eq!(from_bytes::<i128>(b"i-5e").unwrap(), -5);
    assert_eq!(from_bytes::<u128>(b"i5e").unwrap(), 5);
    for (input, what) in [
        (&b"i256e"[..], "u8"),
        (b"i-1e", "u8"),
        (b"i-129e", "i8"),
        (b"i70000e", "u16"),
    ] {
        let e = match what {
            "u8" => from_bytes::<u8>(input).unwrap_err(),
            "i8" => from_bytes::<i8>(input).unwrap_err(),
            _ => from_bytes::<u16>(input).unwrap_err(),
        };
        assert!(e.to_string().contains(what), "{e}");
        assert_eq!(e.offset, 0);
    }
    assert!(from_bytes::<u64>(b"i-1e").is_err());
    assert!(from_bytes::<u32>(b"3:abc").is_err());
    let e = from_bytes::<u8>(b"i99999999999999999999e").unwrap_err();
    assert_eq!(e.kind, ErrorKind::IntOverflow);
    assert!(to_bytes(&u64::MAX)
        .unwrap_err()
        .to_string()
        .contains("18446744073709551615"));
    assert!(to_bytes(&i128::MIN).is_err());
}

#[test]
fn bools_are_zero_or_one() {
    assert!(from_bytes::<bool>(b"i1e").unwrap());
    assert!(!from_bytes::<bool>(b"i0e").unwrap());
    let e = from_bytes::<bool>(b"i2e").unwrap_err();
    assert!(e.to_string().contains("0 or 1"), "{e}");
    assert_eq!(to_bytes(&true).unwrap(), b"i1e");
}

#[test]
fn strings_bytes_and_borrowing() {
    #[derive(Deserialize, Debug)]
    struct Borrowed<'a> {
        s: &'a str,
        #[serde(borrow)]
        b: &'a [u8],
    }
    let input = b"d1:b2:\xff\x001:s3:abce";
    let v: Borrowed<'_> = from_bytes(input).unwrap();
    assert_eq!((v.s, v.b), ("abc", &b"\xff\x00"[..]));
    assert_eq!(from_bytes::<String>(b"3:abc").unwrap(), "abc");
    assert_eq!(from_bytes::<char>(b"2:\xc3\xa9").unwrap(), 'é');
    assert!(from_bytes::<char>(b"2:ab").is_err());
    let e = from_bytes::<String>(b"2:\xff\xfe").unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    let (offset, path, msg) = typed_err::<Borrowed<'_>>(b"d1:b0:1:s1:\xffe");
    assert_eq!((offset, path.as_str()), (9, "s"), "{msg}");
}

#[test]
fn byte_arrays_through_as_bytes() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ids {
        #[serde(with = "as_bytes")]
        id: [u8; 20],
        #[serde(with = "as_bytes")]
        raw: Vec<u8>,
    }
    let ids = Ids {
        id: [7; 20],
        raw: b"\x00\x01".to_vec(),
    };
    let bytes = to_bytes(&ids).unwrap();
    assert!(bytes.starts_with(b"d2:id20:"));
    assert_eq!(from_bytes::<Ids>(&bytes).unwrap(), ids);
    let (offset, path, msg) = typed_err::<Ids>(b"d2:id3:abc3:raw0:e");
    assert_eq!((offset, path.as_str()), (5, "id"), "{msg}");
    assert!(msg.contains("invalid length 3"), "{msg}");
}

#[test]
fn missing_keys_are_none_and_unknown_keys_ignored() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct S {
        a: Option<i64>,
        b: Option<String>,
    }
    let s: S = from_bytes(b"d1:ai1e5:extrali1eee").unwrap();
    assert_eq!(
        s,
        S {
            a: Some(1),
            b: None
        }
    );
}

#[test]
fn type_errors_name_path_and_offset() {
    // files[1].length is negative: offset 38 is the 'i' of i-1e.
    let input = b"d4:infod5:filesld6:lengthi1eed6:lengthi-1eeeee";
    #[derive(Deserialize, Debug)]
    struct T {
        #[allow(dead_code)]
        info: I,
    }
    #[derive(Deserialize, Debug)]
    struct I {
        #[allow(dead_code)]
        files: Vec<F>,
    }
    #[derive(Deserialize, Debug)]
    struct F {
        #[allow(dead_code)]
        length: u64,
    }
    let (offset, path, msg) = typed_err::<T>(input);
    assert_eq!(&input[offset..offset + 4], b"i-1e");
    assert_eq!(path, "info.files[1].length");
    assert!(
        msg.contains("at byte 38 (in info.files[1].length)"),
        "{msg}"
    );

    // A missing field is reported at the dictionary that lacks it.
    let input = b"d4:infod5:filesld6:lengthi1eedeeee";
    let (offset, path, msg) = typed_err::<T>(input);
    assert_eq!((offset, path.as_str()), (29, "info.files[1]"), "{msg}");
    assert!(msg.contains("missing field `length`"), "{msg}");

    // A wrong type at the root.
    let (offset, path, msg) = typed_err::<T>(b"le");
    assert_eq!((offset, path.as_str()), (0, ""), "{msg}");
}

#[test]
fn list_offsets_are_exact_even_for_non_canonical_input() {
    // Leading zeros and a zero-padded string length shift every later item.
    // Each input is a list of (list of u8, anything, list of u8) whose
    // item [2][1] is 300, too big for a u8.
    for input in [
        &b"lli1ei2eei5eli3ei300eee"[..],
        b"lli001ei2ee003:abcli3ei300eee",
        b"lli1eed1:xli01eeeli0003ei300eee",
    ] {
        let e = from_bytes::<(Vec<u8>, Value<'_>, Vec<u8>)>(input).unwrap_err();
        assert_eq!(e.path, "[2][1]");
        assert_eq!(&input[e.offset..e.offset + 5], b"i300e", "{e}");
    }
}

#[test]
fn strictness_and_limits_apply_to_typed_decoding() {
    #[derive(Deserialize, Debug)]
    struct S {
        #[allow(dead_code)]
        a: i64,
        #[allow(dead_code)]
        b: i64,
    }
    let unsorted = b"d1:bi1e1:ai2ee";
    assert!(from_bytes::<S>(unsorted).is_ok());
    let e = from_bytes_strict::<S>(unsorted).unwrap_err();
    assert_eq!((e.kind, e.offset), (ErrorKind::DictUnsortedKeys, 7));
    let shallow = DecodeOptions {
        max_depth: 2,
        ..DecodeOptions::default()
    };
    let e = shallow
        .from_bytes::<Vec<Vec<Vec<i64>>>>(b"llleee")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::DepthExceeded { limit: 2 });
    assert_eq!(e.path, "[0][0]");
}

#[test]
fn lenient_duplicate_keys_first_wins_like_dict_get() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct S {
        a: i64,
    }
    let input = b"d1:ai1e1:ai2ee";
    assert_eq!(from_bytes::<S>(input).unwrap(), S { a: 1 });
    let m: HashMap<String, i64> = from_bytes(input).unwrap();
    assert_eq!(m["a"], 1);
    assert_eq!(
        decode(input).unwrap().as_dict().unwrap().get(b"a"),
        Some(&Value::Int(1))
    );
    assert_eq!(
        from_bytes_strict::<S>(input).unwrap_err().kind,
        ErrorKind::DictDuplicateKey
    );
}

#[test]
fn enums() {
    #[derive(Serialize, Deserialize, Debug, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(rename_all = "lowercase")]
    enum E {
        Started,
        Stopped,
        Count(u32),
        Pair(u8, u8),
        At { x: i64 },
    }
    for (value, bytes) in [
        (E::Started, &b"7:started"[..]),
        (E::Stopped, b"7:stopped"),
        (E::Count(3), b"d5:counti3ee"),
        (E::Pair(1, 2), b"d4:pairli1ei2eee"),
        (E::At { x: -1 }, b"d2:atd1:xi-1eee"),
    ] {
        assert_eq!(to_bytes(&value).unwrap(), bytes);
        assert_eq!(from_bytes::<E>(bytes).unwrap(), value);
    }
    let e = from_bytes::<E>(b"6:paused").unwrap_err();
    assert!(e.to_string().contains("unknown variant `paused`"), "{e}");
    assert!(from_bytes::<E>(b"d5:counti-3ee").is_err());
    assert!(from_bytes::<E>(b"d7:startedi1ee").is_err());
    assert!(from_bytes::<E>(b"5:count").is_err());
    assert!(from_bytes::<E>(b"i1e").is_err());
    // A unit enum as a map key.
    let m: BTreeMap<E, i64> = from_bytes(b"d7:startedi1ee").unwrap();
    assert_eq!(m[&E::Started], 1);
}

#[test]
fn map_keys_text_bytes_and_integers() {
    let m: BTreeMap<u32, String> = from_bytes(b"d1:11:a2:101:be").unwrap();
    assert_eq!(m[&10], "b");
    assert!(from_bytes::<BTreeMap<u32, String>>(b"d1:x1:ae").is_err());
    #[derive(Deserialize, PartialEq, Eq, Hash, Debug)]
    struct K(#[serde(with = "as_bytes")] Vec<u8>);
    let m: HashMap<K, i64> = from_bytes(b"d1:\xffi1ee").unwrap();
    assert_eq!(m[&K(vec![0xff])], 1);
    assert!(from_bytes::<HashMap<String, i64>>(b"d1:\xffi1ee").is_err());
}

#[test]
fn tuples_and_sequences() {
    assert_eq!(
        from_bytes::<(u8, String)>(b"li1e1:ae").unwrap(),
        (1, "a".into())
    );
    let e = from_bytes::<(u8, u8)>(b"li1ei2ei3ee").unwrap_err();
    assert!(e.to_string().contains("invalid length 3"), "{e}");
    assert!(from_bytes::<(u8, u8)>(b"li1ee").is_err());
    assert_eq!(from_bytes::<Vec<i64>>(b"le").unwrap(), Vec::<i64>::new());
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct New(u16);
    assert_eq!(from_bytes::<New>(b"i7e").unwrap(), New(7));
    assert_eq!(to_bytes(&New(7)).unwrap(), b"i7e");
}

#[test]
fn no_floats_no_unit() {
    let e = from_bytes::<f64>(b"i1e").unwrap_err();
    assert!(e.to_string().contains("floating-point"), "{e}");
    assert!(from_bytes::<()>(b"le").is_err());
    for e in [
        to_bytes(&1.5f64).unwrap_err(),
        to_bytes(&()).unwrap_err(),
        to_bytes(&None::<i64>).unwrap_err(),
        to_bytes(&vec![Some(1), None]).unwrap_err(),
    ] {
        assert!(matches!(e.kind, ErrorKind::Serialize(_)), "{e:?}");
        assert!(!e.to_string().contains("at byte"), "{e}");
    }
}

#[test]
fn serialize_errors_name_the_path() {
    #[derive(Serialize)]
    struct Inner {
        x: Vec<f32>,
    }
    #[derive(Serialize)]
    struct Outer {
        inner: Vec<Inner>,
    }
    let e = to_bytes(&Outer {
        inner: vec![Inner { x: vec![] }, Inner { x: vec![1.0] }],
    })
    .unwrap_err();
    assert_eq!(e.path, "inner[1].x[0]");
    let mut bad_key = HashMap::new();
    bad_key.insert(vec![1u8], 1);
    assert!(to_bytes(&bad_key).unwrap_err().to_string().contains("key"));
}

#[test]
fn values_embed_in_structs() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Msg<'a> {
        #[serde(borrow)]
        r: Value<'a>,
        t: String,
        #[serde(borrow)]
        d: Dict<'a>,
    }
    let input = b"d1:dd1:xi1ee1:rd2:id2:ab5:nodesl1:a1:bee1:t2:aae";
    let m: Msg<'_> = from_bytes_strict(input).unwrap();
    assert_eq!(
        m.r.as_dict().unwrap().get(b"id").unwrap().as_bytes(),
        Some(&b"ab"[..])
    );
    assert_eq!(to_bytes(&m).unwrap(), input);
    // A lenient Value is canonicalised on the way out; duplicates are refused.
    let unsorted = decode(b"d1:bi1e1:ai2ee").unwrap();
    assert_eq!(to_bytes(&unsorted).unwrap(), b"d1:ai2e1:bi1ee");
    let dup = decode(b"d1:ai1e1:ai2ee").unwrap();
    assert!(to_bytes(&dup)
        .unwrap_err()
        .to_string()
        .contains("duplicate"));
    assert!(to_value(&m).unwrap().content_eq(&decode(input).unwrap()));
}

#[test]
fn from_value_without_input() {
    let mut files = Dict::new();
    files.insert(&b"length"[..], Value::bytes(b"x"));
    let mut d = Dict::new();
    d.insert(&b"files"[..], Value::List(vec![Value::Dict(files)]));
    #[derive(Deserialize, Debug)]
    struct F {
        #[allow(dead_code)]
        length: u64,
    }
    #[derive(Deserialize, Debug)]
    struct T {
        #[allow(dead_code)]
        files: Vec<F>,
    }
    let e = from_value::<T>(&Value::Dict(d)).unwrap_err();
    assert_eq!((e.offset, e.path.as_str()), (0, "files[0].length"));
    // With a decoded value the dictionary spans still give offsets.
    let v = decode(b"d5:filesld6:length1:xeee").unwrap();
    let e = from_value::<T>(&v).unwrap_err();
    assert_eq!((e.offset, e.path.as_str()), (18, "files[0].length"));
}
