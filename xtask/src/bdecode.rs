//! Just enough bencode for the harness: tracker replies and the raw `info` dictionary of
//! a .torrent. Deliberately independent of `bt-bencode`: the harness must not trust the
//! code it tests to check the programs it tests against.

use anyhow::{bail, Context, Result};

/// Nesting deeper than this is refused.
const MAX_DEPTH: usize = 32;

/// A decoded bencode value.
#[derive(Debug, PartialEq)]
pub enum Value {
    /// `i...e`
    Int(i64),
    /// `N:...`
    Bytes(Vec<u8>),
    /// `l...e`
    List(Vec<Value>),
    /// `d...e`, keys in input order.
    Dict(Vec<(Vec<u8>, Value)>),
}

/// Decodes one value from the front of `input`; returns it and the rest.
pub fn value(input: &[u8]) -> Result<(Value, &[u8])> {
    value_at_depth(input, 0)
}

/// The raw bytes of the value under `key` in the dictionary that is the whole of `input`
/// (e.g. the `info` dictionary of a .torrent, whose SHA-1 is the info-hash).
pub fn dict_entry_bytes<'a>(input: &'a [u8], key: &[u8]) -> Result<Option<&'a [u8]>> {
    if input.first() != Some(&b'd') {
        bail!("not a dictionary");
    }
    let mut rest = &input[1..];
    let mut found = None;
    while rest.first() != Some(&b'e') {
        let (Value::Bytes(k), after_key) = value_at_depth(rest, 1)? else {
            bail!("dictionary key is not a string");
        };
        let (_, after_value) = value_at_depth(after_key, 1)?;
        if k == key {
            found = Some(&after_key[..after_key.len() - after_value.len()]);
        }
        rest = after_value;
    }
    if rest.len() != 1 {
        bail!("{} bytes after the dictionary", rest.len() - 1);
    }
    Ok(found)
}

fn value_at_depth(input: &[u8], depth: usize) -> Result<(Value, &[u8])> {
    if depth > MAX_DEPTH {
        bail!("nested deeper than {MAX_DEPTH}");
    }
    match input.first() {
        Some(b'i') => {
            let end = input
                .iter()
                .position(|&b| b == b'e')
                .context("unterminated int")?;
            let n = std::str::from_utf8(&input[1..end])?.parse()?;
            Ok((Value::Int(n), &input[end + 1..]))
        }
        Some(b'l') => {
            let mut rest = &input[1..];
            let mut items = Vec::new();
            while rest.first() != Some(&b'e') {
                let (item, r) = value_at_depth(rest, depth + 1)?;
                items.push(item);
                rest = r;
            }
            Ok((Value::List(items), &rest[1..]))
        }
        Some(b'd') => {
            let mut rest = &input[1..];
            let mut entries = Vec::new();
            while rest.first() != Some(&b'e') {
                let (Value::Bytes(key), r) = value_at_depth(rest, depth + 1)? else {
                    bail!("dictionary key is not a string");
                };
                let (item, r) = value_at_depth(r, depth + 1)?;
                entries.push((key, item));
                rest = r;
            }
            Ok((Value::Dict(entries), &rest[1..]))
        }
        Some(b'0'..=b'9') => {
            let colon = input
                .iter()
                .position(|&b| b == b':')
                .context("no ':' in string")?;
            let len: usize = std::str::from_utf8(&input[..colon])?.parse()?;
            let body = input
                .get(colon + 1..colon + 1 + len)
                .context("string runs past the end")?;
            Ok((Value::Bytes(body.to_vec()), &input[colon + 1 + len..]))
        }
        Some(&b) => bail!("unexpected byte {:?}", b as char),
        None => bail!("unexpected end of input"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode() {
        let (v, rest) = value(b"d1:ai-3e1:bl2:xyeeTAIL").unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (b"a".to_vec(), Value::Int(-3)),
                (
                    b"b".to_vec(),
                    Value::List(vec![Value::Bytes(b"xy".to_vec())])
                ),
            ])
        );
        assert_eq!(rest, b"TAIL");
    }

    #[test]
    fn dict_entry_bytes_returns_the_raw_value() {
        let torrent = b"d8:announce3:url4:infod4:name1:x6:lengthi5ee7:comment1:ce";
        let info = dict_entry_bytes(torrent, b"info").unwrap().unwrap();
        assert_eq!(info, b"d4:name1:x6:lengthi5ee");
        assert_eq!(dict_entry_bytes(torrent, b"missing").unwrap(), None);
        assert!(dict_entry_bytes(b"d4:infoi1eeX", b"info").is_err());
        assert!(dict_entry_bytes(b"li1ee", b"info").is_err());
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b"i5"[..],
            b"d3:abce",
            b"5:ab",
            b"l",
            b"x",
            b"",
            b"di1ei2ee",
        ] {
            assert!(value(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(value(&deep).is_err());
    }
}
