//! The untyped bencode value tree and its accessors.

use std::borrow::Cow;
use std::ops::Range;

/// A bencoded value. Byte strings borrow from the input when decoded.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (`i42e`), limited to the range of `i64`.
    Int(i64),
    /// A byte string (`4:spam`); not necessarily UTF-8.
    Bytes(Cow<'a, [u8]>),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d...e`), entries in input order.
    Dict(Dict<'a>),
}

/// One dictionary entry: key, value, and where the value's bytes lie in the input.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The key bytes.
    pub key: Cow<'a, [u8]>,
    /// The decoded value.
    pub value: Value<'a>,
    /// Byte range of the value's encoding in the original input (empty for built values).
    pub span: Range<usize>,
}

/// A dictionary: entries in the order they were decoded or inserted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Dict<'a> {
    entries: Vec<Entry<'a>>,
}

impl<'a> Dict<'a> {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a dictionary from decoded entries, keeping their order.
    pub(crate) fn from_entries(entries: Vec<Entry<'a>>) -> Self {
        Self { entries }
    }

    /// The value of the first entry with this key.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entry(key).map(|e| &e.value)
    }

    /// The first entry with this key.
    pub fn entry(&self, key: &[u8]) -> Option<&Entry<'a>> {
        self.entries.iter().find(|e| e.key.as_ref() == key)
    }

    /// Byte range in the original input of the value stored under `key`.
    pub fn span(&self, key: &[u8]) -> Option<Range<usize>> {
        self.entry(key).map(|e| e.span.clone())
    }

    /// Inserts or replaces `key`, keeping keys sorted (canonical order) for encoding.
    pub fn insert(&mut self, key: impl Into<Cow<'a, [u8]>>, value: Value<'a>) {
        let key = key.into();
        match self
            .entries
            .binary_search_by(|e| e.key.as_ref().cmp(key.as_ref()))
        {
            Ok(i) => self.entries[i].value = value,
            Err(i) => self.entries.insert(
                i,
                Entry {
                    key,
                    value,
                    span: 0..0,
                },
            ),
        }
    }

    /// Removes the first entry with `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value<'a>> {
        let i = self.entries.iter().position(|e| e.key.as_ref() == key)?;
        Some(self.entries.remove(i).value)
    }

    /// All entries in order.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    /// Iterates over `(key, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value<'a>)> {
        self.entries.iter().map(|e| (e.key.as_ref(), &e.value))
    }

    /// Number of entries (duplicates included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Copies every borrowed byte so the dictionary outlives its input.
    pub fn into_owned(self) -> Dict<'static> {
        Dict {
            entries: self
                .entries
                .into_iter()
                .map(|e| Entry {
                    key: Cow::Owned(e.key.into_owned()),
                    value: e.value.into_owned(),
                    span: e.span,
                })
                .collect(),
        }
    }
}

impl<'a> Value<'a> {
    /// A byte-string value that borrows `bytes`.
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Value::Bytes(Cow::Borrowed(bytes))
    }

    /// A byte-string value that owns `bytes`.
    pub fn owned_bytes(bytes: impl Into<Vec<u8>>) -> Value<'static> {
        Value::Bytes(Cow::Owned(bytes.into()))
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The string, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "byte string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }

    /// Equal as bencode data: same integers, bytes, list items and dictionary
    /// entries in the same order; spans are ignored (unlike `==`).
    pub fn content_eq(&self, other: &Value<'_>) -> bool {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.content_eq(y))
            }
            (Value::Dict(a), Value::Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, va), (kb, vb))| ka == kb && va.content_eq(vb))
            }
            _ => false,
        }
    }

    /// Copies every borrowed byte so the value outlives its input.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Int(i) => Value::Int(i),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::List(l) => Value::List(l.into_iter().map(Value::into_owned).collect()),
            Value::Dict(d) => Value::Dict(d.into_owned()),
        }
    }
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if b.len() <= 64 => write!(f, "{s:?}"),
                _ => write!(f, "<{} bytes>", b.len()),
            },
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => d.fmt(f),
        }
    }
}

impl std::fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|e| (String::from_utf8_lossy(&e.key), &e.value)),
            )
            .finish()
    }
}

impl From<i64> for Value<'static> {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::bytes(b)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::bytes(s.as_bytes())
    }
}

impl From<Vec<u8>> for Value<'static> {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(Cow::Owned(b))
    }
}

impl<'a> From<Dict<'a>> for Value<'a> {
    fn from(d: Dict<'a>) -> Self {
        Value::Dict(d)
    }
}

impl<'a> From<Vec<Value<'a>>> for Value<'a> {
    fn from(l: Vec<Value<'a>>) -> Self {
        Value::List(l)
    }
}
