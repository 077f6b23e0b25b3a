//! bt-bencode on arbitrary bytes: decoding never panics in either mode; what
//! the strict decoder accepts re-encodes to the very same bytes; what the
//! lenient decoder accepts re-encodes to bytes that decode to the same data
//! (duplicate keys and key order kept), and every recorded span slices out
//! the value it belongs to. Typed decoding (serde) never panics and places
//! its errors inside the input. The views (`decode_ref`) give the same verdict and
//! the same error as the tree, lenient and strict.
#![no_main]

use std::collections::BTreeMap;

use bt_bencode::{decode, decode_strict, from_bytes, to_bytes, DecodeOptions, Value};
use libfuzzer_sys::fuzz_target;

/// Every dictionary entry's span, decoded on its own, is that entry's value.
fn check_spans(input: &[u8], v: &Value<'_>) {
    match v {
        Value::List(items) => items.iter().for_each(|i| check_spans(input, i)),
        Value::Dict(d) => {
            for e in d.entries() {
                let slice = &input[e.span.clone()];
                let alone = DecodeOptions::default().decode_prefix(slice);
                let (value, used) = alone.expect("a span holds a whole value");
                assert_eq!(used, slice.len());
                assert!(value.content_eq(&e.value));
                check_spans(input, &e.value);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    for opts in [DecodeOptions::default(), DecodeOptions::strict()] {
        let tree = opts.decode_prefix(data).map(|(_, end)| end);
        let view = opts.decode_ref_prefix(data).map(|(_, end)| end);
        assert_eq!(tree, view, "the views agree with the tree");
    }
    let lenient = DecodeOptions::default().decode_prefix(data);
    if let Ok(v) = decode_strict(data) {
        assert_eq!(v.encode(), data, "strict input is canonical");
        let (l, used) = lenient
            .as_ref()
            .expect("strict accepts only what lenient does");
        assert_eq!(*used, data.len());
        assert!(l.content_eq(&v));
    }
    if let Ok((v, used)) = &lenient {
        let input = &data[..*used];
        check_spans(input, v);
        let bytes = v.encode();
        let again = decode(&bytes).expect("an encoding decodes");
        assert!(again.content_eq(v));
    }

    // Typed decoding: never a panic, errors point into the input.
    for e in [
        from_bytes::<Value<'_>>(data).err(),
        from_bytes::<Vec<(u8, String)>>(data).err(),
        from_bytes::<BTreeMap<String, Vec<i16>>>(data).err(),
        from_bytes::<Vec<Option<Vec<u32>>>>(data).err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(e.offset <= data.len(), "{e}");
    }
    if let Ok(v) = from_bytes::<Value<'_>>(data) {
        // Canonical output unless a lenient dictionary repeated a key.
        if let Ok(bytes) = to_bytes(&v) {
            assert!(decode_strict(&bytes).is_ok());
        }
    }
});
