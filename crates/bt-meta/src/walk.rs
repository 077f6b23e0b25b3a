//! Typed access to a decoded bencode tree that remembers, for every value, its key path
//! (`info.files[3].length`) and its byte offset in the input, so that every error can
//! name both.

use bt_bencode::{Dict, Value};

use crate::error::{Error, Result};

/// A value with its key path and byte offset.
#[derive(Clone)]
pub(crate) struct Node<'v, 'a> {
    pub value: &'v Value<'a>,
    pub offset: usize,
    pub key: String,
    input: &'a [u8],
}

/// A dictionary value with its key path and byte offset.
#[derive(Clone)]
pub(crate) struct DictNode<'v, 'a> {
    pub dict: &'v Dict<'a>,
    pub offset: usize,
    pub key: String,
    input: &'a [u8],
}

fn wrong_type(node: &Node<'_, '_>, expected: &'static str) -> Error {
    Error::WrongType {
        key: node.key.clone(),
        expected,
        found: node.value.type_name(),
        offset: node.offset,
    }
}

/// The offset just past the value that starts at `pos` (the input is known to decode,
/// so this only needs to skip; it stops at the end of input rather than fail).
fn skip_value(input: &[u8], mut pos: usize) -> usize {
    match input.get(pos) {
        Some(b'i') => match input[pos..].iter().position(|&b| b == b'e') {
            Some(e) => pos + e + 1,
            None => input.len(),
        },
        Some(b'l' | b'd') => {
            pos += 1;
            while pos < input.len() && input[pos] != b'e' {
                pos = skip_value(input, pos);
            }
            (pos + 1).min(input.len())
        }
        Some(b'0'..=b'9') => {
            let colon = match input[pos..].iter().position(|&b| b == b':') {
                Some(c) => pos + c,
                None => return input.len(),
            };
            let len: usize = std::str::from_utf8(&input[pos..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            colon.saturating_add(1).saturating_add(len).min(input.len())
        }
        _ => input.len(),
    }
}

/// A key as it appears in a key path: as text when it is printable UTF-8, `""` when
/// empty (the file entry of a BEP 52 file tree), else `0x` and hex (a pieces root).
fn key_name(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok("") => "\"\"".to_string(),
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("0x{}", hex::encode(key)),
    }
}

impl<'v, 'a> Node<'v, 'a> {
    pub fn root(value: &'v Value<'a>, input: &'a [u8], key: &str) -> Self {
        Node {
            value,
            offset: 0,
            key: key.to_string(),
            input,
        }
    }

    pub fn dict(&self) -> Result<DictNode<'v, 'a>> {
        match self.value {
            Value::Dict(dict) => Ok(DictNode {
                dict,
                offset: self.offset,
                key: self.key.clone(),
                input: self.input,
            }),
            _ => Err(wrong_type(self, "a dictionary")),
        }
    }

    pub fn int(&self) -> Result<i64> {
        self.value
            .as_int()
            .ok_or_else(|| wrong_type(self, "an integer"))
    }

    pub fn bytes(&self) -> Result<&'v [u8]> {
        self.value
            .as_bytes()
            .ok_or_else(|| wrong_type(self, "a byte string"))
    }

    /// A string, converted lossily from whatever bytes are there.
    pub fn string(&self) -> Result<String> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// A length: a non-negative integer.
    pub fn length(&self) -> Result<u64> {
        let v = self.int()?;
        u64::try_from(v).map_err(|_| Error::NegativeLength {
            key: self.key.clone(),
            value: v,
            offset: self.offset,
        })
    }

    pub fn list(&self) -> Result<Vec<Node<'v, 'a>>> {
        let items = self
            .value
            .as_list()
            .ok_or_else(|| wrong_type(self, "a list"))?;
        let mut pos = self.offset + 1;
        let mut out = Vec::with_capacity(items.len());
        for (i, value) in items.iter().enumerate() {
            out.push(Node {
                value,
                offset: pos,
                key: format!("{}[{i}]", self.key),
                input: self.input,
            });
            pos = skip_value(self.input, pos);
        }
        Ok(out)
    }

    /// A list of byte strings.
    pub fn byte_list(&self) -> Result<Vec<&'v [u8]>> {
        self.list()?.iter().map(|n| n.bytes()).collect()
    }
}

impl<'v, 'a> DictNode<'v, 'a> {
    fn child(&self, key: &[u8], value: &'v Value<'a>, offset: usize) -> Node<'v, 'a> {
        let name = key_name(key);
        Node {
            value,
            offset,
            key: if self.key.is_empty() {
                name
            } else {
                format!("{}.{name}", self.key)
            },
            input: self.input,
        }
    }

    /// The value under `key` (the first one, if repeated).
    pub fn get(&self, key: &str) -> Option<Node<'v, 'a>> {
        let entry = self.dict.entry(key.as_bytes())?;
        Some(self.child(key.as_bytes(), &entry.value, entry.span.start))
    }

    /// The value under `key`, which must be there.
    pub fn req(&self, key: &str) -> Result<Node<'v, 'a>> {
        self.get(key).ok_or_else(|| Error::MissingKey {
            key: self.child(key.as_bytes(), &Value::Int(0), 0).key,
            offset: self.offset,
        })
    }

    /// Every entry, in input order.
    pub fn entries(&self) -> impl Iterator<Item = (&'v [u8], Node<'v, 'a>)> + '_ {
        self.dict
            .entries()
            .iter()
            .map(|e| (e.key.as_ref(), self.child(&e.key, &e.value, e.span.start)))
    }

    /// The same dictionary under another key path (`""` for the root).
    pub fn renamed(mut self, key: &str) -> Self {
        self.key = key.to_string();
        self
    }

    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// Refuses a dictionary (at any depth below this one) that holds a key twice.
    pub fn reject_duplicate_keys(&self) -> Result<()> {
        let mut keys: Vec<&[u8]> = self.dict.entries().iter().map(|e| e.key.as_ref()).collect();
        keys.sort_unstable();
        if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::DuplicateKey {
                key: self.child(w[0], &Value::Int(0), 0).key,
                offset: self.offset,
            });
        }
        for (_, node) in self.entries() {
            node.reject_duplicate_keys()?;
        }
        Ok(())
    }
}

impl Node<'_, '_> {
    fn reject_duplicate_keys(&self) -> Result<()> {
        match self.value {
            Value::Dict(_) => self.dict()?.reject_duplicate_keys(),
            Value::List(_) => self
                .list()?
                .iter()
                .try_for_each(|n| n.reject_duplicate_keys()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_paths() {
        let input = b"d4:infod5:filesld6:lengthi5eed6:lengthi-3eeeee";
        let v = bt_bencode::decode(input).unwrap();
        let root = Node::root(&v, input, "").dict().unwrap();
        let info = root.req("info").unwrap().dict().unwrap();
        assert_eq!(info.offset, 7);
        let files = info.req("files").unwrap().list().unwrap();
        assert_eq!(files[1].offset, 29);
        let f1 = files[1].dict().unwrap();
        let len = f1.req("length").unwrap();
        assert_eq!(len.key, "info.files[1].length");
        match len.length() {
            Err(Error::NegativeLength { key, value, offset }) => {
                assert_eq!(
                    (key.as_str(), value, offset),
                    ("info.files[1].length", -3, 38)
                );
                assert_eq!(&input[offset..offset + 4], b"i-3e");
            }
            other => panic!("{other:?}"),
        }
        match f1.req("path") {
            Err(Error::MissingKey { key, offset }) => {
                assert_eq!((key.as_str(), offset), ("info.files[1].path", 29))
            }
            other => panic!("{:?}", other.map(|n| n.key)),
        }
    }

    #[test]
    fn duplicate_keys_found_at_depth() {
        let input = b"d1:ald1:xi1e1:xi2eeee";
        let v = bt_bencode::decode(input).unwrap();
        let root = Node::root(&v, input, "").dict().unwrap();
        assert!(matches!(
            root.reject_duplicate_keys(),
            Err(Error::DuplicateKey { key, .. }) if key == "a[0].x"
        ));
    }
}
