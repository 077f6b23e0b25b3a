//! Borrowed views of checked input: [`ValueRef`], [`ListRef`], [`DictRef`].
//!
//! [`DecodeOptions::decode_ref`] checks the whole input once (the same rules, limits
//! and error positions as [`DecodeOptions::decode`]) and hands back a view of the
//! root value; nothing is allocated, whatever the input holds. A view is a byte range
//! of the input: reading it parses on the spot (a dictionary lookup walks the
//! entries, an iterator finds where each item ends), so a caller pays only for what
//! it reads. Every offset is an offset in the whole input, like the tree's spans.
//!
//! The readers below assume checked input but never trust it: on anything
//! unexpected they stop (an iterator ends, an accessor returns `None`) instead of
//! panicking.

use std::fmt;
use std::ops::Range;

use crate::decode::DecodeOptions;
use crate::error::{Error, ErrorKind};
use crate::scan::scan;

impl DecodeOptions {
    /// Checks `input` and returns a view of its one value; in strict mode nothing
    /// may follow the value, in lenient mode trailing bytes are ignored. The checks
    /// and errors are those of [`DecodeOptions::decode`]; no tree is built.
    pub fn decode_ref<'a>(&self, input: &'a [u8]) -> Result<ValueRef<'a>, Error> {
        let (value, end) = self.decode_ref_prefix(input)?;
        if self.strict && end != input.len() {
            return Err(Error::new(ErrorKind::TrailingData, end, String::new()));
        }
        Ok(value)
    }

    /// Checks one value at the start of `input` and returns a view of it with the
    /// number of bytes it took; what follows is left alone.
    pub fn decode_ref_prefix<'a>(&self, input: &'a [u8]) -> Result<(ValueRef<'a>, usize), Error> {
        let end = scan(self, input)?;
        let value = ValueRef {
            input,
            start: 0,
            end,
        };
        Ok((value, end))
    }
}

/// The kind of a bencode value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `i...e`.
    Int,
    /// `<len>:<bytes>`.
    Bytes,
    /// `l...e`.
    List,
    /// `d...e`.
    Dict,
}

impl Kind {
    /// A short name, for error messages (the same as [`crate::Value::type_name`]).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "integer",
            Kind::Bytes => "byte string",
            Kind::List => "list",
            Kind::Dict => "dictionary",
        }
    }
}

/// A view of one checked value: where it lies in the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ValueRef<'a> {
    input: &'a [u8],
    start: usize,
    end: usize,
}

/// A view of a checked list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ListRef<'a> {
    value: ValueRef<'a>,
}

/// A view of a checked dictionary, entries in input order (repeated keys included).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DictRef<'a> {
    value: ValueRef<'a>,
}

/// One entry of a [`DictRef`]: the key, where the key starts, the value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntryRef<'a> {
    /// The key's bytes.
    pub key: &'a [u8],
    /// Offset in the input of the key's encoding (its length prefix).
    pub key_offset: usize,
    /// The value.
    pub value: ValueRef<'a>,
}

/// One step from a value down to one inside it, as [`ValueRef::path_to`] gives them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PathStep<'a> {
    /// The value under this dictionary key.
    Key(&'a [u8]),
    /// The list item at this index.
    Index(usize),
}

impl<'a> ValueRef<'a> {
    /// Offset in the input of the value's first byte.
    pub fn offset(&self) -> usize {
        self.start
    }

    /// Byte range of the value's encoding in the input.
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The value's encoding, exactly as in the input (what an info-hash is taken of).
    pub fn raw(&self) -> &'a [u8] {
        self.input.get(self.start..self.end).unwrap_or_default()
    }

    /// What kind of value this is.
    pub fn kind(&self) -> Kind {
        match self.input.get(self.start) {
            Some(b'i') => Kind::Int,
            Some(b'l') => Kind::List,
            Some(b'd') => Kind::Dict,
            _ => Kind::Bytes,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.kind().name()
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        if self.kind() != Kind::Int {
            return None;
        }
        let body = self.input.get(self.start + 1..self.end.checked_sub(1)?)?;
        let (negative, digits) = match body.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, body),
        };
        let magnitude = digits.iter().try_fold(0i128, |n, &c| {
            c.is_ascii_digit()
                .then(|| n.checked_mul(10)?.checked_add(i128::from(c - b'0')))?
        })?;
        i64::try_from(if negative { -magnitude } else { magnitude }).ok()
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        if self.kind() != Kind::Bytes {
            return None;
        }
        read_bytes(self.input, self.start).map(|(b, _)| b)
    }

    /// The string, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<ListRef<'a>> {
        (self.kind() == Kind::List).then_some(ListRef { value: *self })
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<DictRef<'a>> {
        (self.kind() == Kind::Dict).then_some(DictRef { value: *self })
    }

    /// The steps from this value down to the value that starts at `offset` (empty
    /// if that is this value). Stops where no value inside holds `offset`, so the
    /// result may lead to a value around it. For naming a value in an error: it
    /// reads everything before `offset`.
    pub fn path_to(&self, offset: usize) -> Vec<PathStep<'a>> {
        let mut steps = Vec::new();
        let mut at = *self;
        'descend: while at.start != offset {
            if let Some(list) = at.as_list() {
                for (i, item) in list.iter().enumerate() {
                    if item.span().contains(&offset) {
                        steps.push(PathStep::Index(i));
                        at = item;
                        continue 'descend;
                    }
                }
            } else if let Some(dict) = at.as_dict() {
                for e in dict.iter() {
                    if e.value.span().contains(&offset) {
                        steps.push(PathStep::Key(e.key));
                        at = e.value;
                        continue 'descend;
                    }
                }
            }
            break;
        }
        steps
    }

    /// A view of the value at `offset` of `input`, which must be checked input that
    /// holds a value there (as the offsets views give out); `None` if there is none.
    pub fn at(input: &'a [u8], offset: usize) -> Option<Self> {
        let end = skip(input, offset)?;
        Some(ValueRef {
            input,
            start: offset,
            end,
        })
    }
}

impl<'a> ListRef<'a> {
    /// The list as a value.
    pub fn value(&self) -> ValueRef<'a> {
        self.value
    }

    /// The items in order.
    pub fn iter(&self) -> ListIter<'a> {
        ListIter {
            input: self.value.input,
            pos: self.value.start + 1,
        }
    }

    /// Number of items (walks the list).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the list has no item.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> IntoIterator for ListRef<'a> {
    type Item = ValueRef<'a>;
    type IntoIter = ListIter<'a>;

    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

impl<'a> DictRef<'a> {
    /// The dictionary as a value.
    pub fn value(&self) -> ValueRef<'a> {
        self.value
    }

    /// The entries in input order.
    pub fn iter(&self) -> DictIter<'a> {
        DictIter {
            input: self.value.input,
            pos: self.value.start + 1,
        }
    }

    /// The value of the first entry with this key (walks the entries).
    pub fn get(&self, key: &[u8]) -> Option<ValueRef<'a>> {
        self.iter().find(|e| e.key == key).map(|e| e.value)
    }

    /// Number of entries, repeated keys included (walks the entries).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the dictionary has no entry.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> IntoIterator for DictRef<'a> {
    type Item = EntryRef<'a>;
    type IntoIter = DictIter<'a>;

    fn into_iter(self) -> DictIter<'a> {
        self.iter()
    }
}

/// The items of a [`ListRef`].
#[derive(Clone, Debug)]
pub struct ListIter<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = ValueRef<'a>;

    fn next(&mut self) -> Option<ValueRef<'a>> {
        if self.input.get(self.pos) == Some(&b'e') {
            return None;
        }
        let value = ValueRef::at(self.input, self.pos)?;
        self.pos = value.end;
        Some(value)
    }
}

/// The entries of a [`DictRef`].
#[derive(Clone, Debug)]
pub struct DictIter<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for DictIter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        if self.input.get(self.pos) == Some(&b'e') {
            return None;
        }
        let key_offset = self.pos;
        let (key, after) = read_bytes(self.input, key_offset)?;
        let value = ValueRef::at(self.input, after)?;
        self.pos = value.end;
        Some(EntryRef {
            key,
            key_offset,
            value,
        })
    }
}

/// Reads the length prefix of the byte string at `pos`: the length and where the
/// bytes start.
#[inline]
fn read_len(input: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let c = *input.get(pos)?;
        pos += 1;
        match c {
            b'0'..=b'9' => {
                len = len.checked_mul(10)?.checked_add(usize::from(c - b'0'))?;
                digits += 1;
            }
            b':' if digits > 0 => return Some((len, pos)),
            _ => return None,
        }
    }
}

/// Reads the byte string at `pos`: its bytes and where it ends.
pub(crate) fn read_bytes(input: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let (len, begin) = read_len(input, pos)?;
    let end = begin.checked_add(len)?;
    Some((input.get(begin..end)?, end))
}

/// Where the value that starts at `pos` ends. Iterative, so deep nesting costs no
/// stack; `None` on anything that is not well-formed.
pub(crate) fn skip(input: &[u8], mut pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *input.get(pos)? {
            b'0'..=b'9' => {
                let (len, begin) = read_len(input, pos)?;
                pos = begin.checked_add(len)?;
                if pos > input.len() {
                    return None;
                }
            }
            b'i' => {
                let body = input.get(pos + 1..)?;
                pos += 2 + body.iter().position(|&c| c == b'e')?;
            }
            b'l' | b'd' => {
                depth += 1;
                pos += 1;
                continue;
            }
            b'e' => {
                depth = depth.checked_sub(1)?;
                pos += 1;
            }
            _ => return None,
        }
        if depth == 0 {
            return Some(pos);
        }
    }
}

impl fmt::Debug for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:?}", self.type_name(), self.span())
    }
}

impl fmt::Debug for ListRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for DictRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|e| (String::from_utf8_lossy(e.key), e.value)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_checked() {
        let input = b"d3:cow3:moo4:spaml1:ai-12ei007ee4:zerod0:i0eee";
        let root = DecodeOptions::default().decode_ref(input).unwrap();
        let d = root.as_dict().unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(b"cow").unwrap().as_str(), Some("moo"));
        let spam = d.get(b"spam").unwrap();
        assert_eq!(spam.span(), 17..32);
        let items: Vec<_> = spam.as_list().unwrap().iter().collect();
        assert_eq!(items[0].as_bytes(), Some(&b"a"[..]));
        assert_eq!(items[1].as_int(), Some(-12));
        assert_eq!(items[2].as_int(), Some(7));
        assert_eq!(items[2].as_bytes(), None);
        let zero = d.get(b"zero").unwrap().as_dict().unwrap();
        let e = zero.iter().next().unwrap();
        assert_eq!(
            (e.key, e.key_offset, e.value.as_int()),
            (&b""[..], 39, Some(0))
        );
        assert_eq!(
            root.path_to(items[1].offset()),
            [PathStep::Key(b"spam"), PathStep::Index(1)]
        );
        assert_eq!(root.path_to(0), []);
        assert_eq!(root.raw(), input);
    }

    #[test]
    fn int_edges() {
        for (input, want) in [
            (&b"i9223372036854775807e"[..], i64::MAX),
            (b"i-9223372036854775808e", i64::MIN),
            (b"i-0e", 0),
            (b"i00000000000000000000001e", 1),
        ] {
            let v = DecodeOptions::default().decode_ref(input).unwrap();
            assert_eq!(v.as_int(), Some(want));
        }
    }

    #[test]
    fn same_errors_as_the_tree() {
        for input in [&b"d4:infod5:filesl d1:xi1eeee"[..], b"li1e", b"d1:ai1e1:ae"] {
            let opts = DecodeOptions::default();
            assert_eq!(
                opts.decode_ref(input).map(|v| v.span()),
                opts.decode(input).map(|_| 0..input.len())
            );
        }
    }
}
