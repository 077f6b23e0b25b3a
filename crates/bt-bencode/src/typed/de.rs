//! The typed decoder: a serde `Deserializer` over a decoded [`Value`] tree.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer as _, Unexpected, Visitor};
use serde::Deserialize;

use crate::decode::DecodeOptions;
use crate::error::{push_index, push_key, Error, ErrorKind, Result};
use crate::value::{Dict, Entry, Value};

/// Offset of an error that no deserializer has placed yet. Every error leaves
/// this module located: the deserializer of the value it came out of replaces
/// the marker with that value's offset and path.
const UNLOCATED: usize = usize::MAX;

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(ErrorKind::Custom(msg.to_string()), UNLOCATED, String::new())
    }
}

/// Decodes leniently with default limits, then deserializes a `T`.
pub fn from_bytes<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    DecodeOptions::default().from_bytes(input)
}

/// Decodes in strict canonical form with default limits, then deserializes a `T`.
pub fn from_bytes_strict<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    DecodeOptions::strict().from_bytes(input)
}

/// Deserializes a `T` from a value tree. Without the input at hand, an error
/// inside a list points at the nearest enclosing dictionary value whose span
/// is known (or at 0); prefer [`from_bytes`] when you have the bytes.
pub fn from_value<'de, T: Deserialize<'de>>(value: &Value<'de>) -> Result<T> {
    let ctx = Ctx {
        input: None,
        root_at: None,
    };
    ValueDe {
        value,
        path: Path::Root,
        ctx: &ctx,
    }
    .run()
}

impl DecodeOptions {
    /// Decodes `input` with these options, then deserializes a `T` from it;
    /// errors name the byte offset and key path of the offending value.
    pub fn from_bytes<'de, T: Deserialize<'de>>(&self, input: &'de [u8]) -> Result<T> {
        let value = self.decode(input)?;
        let ctx = Ctx {
            input: Some(input),
            root_at: Some(0),
        };
        ValueDe {
            value: &value,
            path: Path::Root,
            ctx: &ctx,
        }
        .run()
    }
}

/// What the deserializer needs to place an error: the input, if known.
struct Ctx<'i> {
    input: Option<&'i [u8]>,
    root_at: Option<usize>,
}

/// The way from the root to the value being deserialized, one stack frame per
/// step; rendered into a string only when an error is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key {
        parent: &'a Path<'a>,
        key: &'a [u8],
        /// Offset of the value, from its entry's span (`None` for built values).
        at: Option<usize>,
    },
    Index {
        parent: &'a Path<'a>,
        index: usize,
    },
}

impl Path<'_> {
    /// The steps from the root, outermost first.
    fn steps(&self) -> Vec<Path<'_>> {
        let mut steps = Vec::new();
        let mut cur = *self;
        loop {
            match cur {
                Path::Root => break,
                Path::Key { parent, .. } | Path::Index { parent, .. } => {
                    steps.push(cur);
                    cur = *parent;
                }
            }
        }
        steps.reverse();
        steps
    }
}

/// Deserializes one value of the tree.
#[derive(Clone, Copy)]
struct ValueDe<'a, 'de> {
    value: &'a Value<'de>,
    path: Path<'a>,
    ctx: &'a Ctx<'a>,
}

impl<'a, 'de> ValueDe<'a, 'de> {
    /// Deserializes the root value, placing any error.
    fn run<T: Deserialize<'de>>(self) -> Result<T> {
        T::deserialize(self).map_err(|e| self.locate(e))
    }

    /// Gives an unplaced error this value's offset and path.
    fn locate(&self, mut e: Error) -> Error {
        if e.offset == UNLOCATED {
            let (offset, path) = self.position();
            e.offset = offset;
            e.path = path;
        }
        e
    }

    /// The byte offset and rendered key path of this value.
    fn position(&self) -> (usize, String) {
        let mut path = String::new();
        let mut pos = self.ctx.root_at;
        let mut last_known = pos;
        for step in self.path.steps() {
            match step {
                Path::Root => {}
                Path::Key { key, at, .. } => {
                    push_key(&mut path, key);
                    pos = at;
                }
                Path::Index { index, .. } => {
                    push_index(&mut path, index);
                    pos = match (pos, self.ctx.input) {
                        (Some(list_at), Some(input)) => nth_item(input, list_at, index),
                        _ => None,
                    };
                }
            }
            if pos.is_some() {
                last_known = pos;
            }
        }
        (pos.or(last_known).unwrap_or(0), path)
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match self.value {
            Value::Int(i) => Unexpected::Signed(*i),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if s.len() <= 64 => Unexpected::Str(s),
                _ => Unexpected::Other("byte string"),
            },
            Value::List(_) => Unexpected::Seq,
            Value::Dict(_) => Unexpected::Map,
        }
    }

    fn invalid_type(&self, exp: &dyn de::Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), exp)
    }

    fn visit_list<V: Visitor<'de>>(self, items: &'a [Value<'de>], visitor: V) -> Result<V::Value> {
        let path = self.path;
        let mut seq = SeqDe {
            items: items.iter(),
            index: 0,
            path: &path,
            ctx: self.ctx,
        };
        let out = visitor.visit_seq(&mut seq)?;
        if seq.items.len() > 0 {
            return Err(de::Error::invalid_length(
                items.len(),
                &"fewer items in the list",
            ));
        }
        Ok(out)
    }

    fn visit_dict<V: Visitor<'de>>(self, dict: &'a Dict<'de>, visitor: V) -> Result<V::Value> {
        let path = self.path;
        let entries = dict.entries();
        // Strictly sorted keys (always so after a strict decode) cannot repeat;
        // otherwise remember the keys seen so that the first of duplicates wins.
        let sorted = entries
            .iter()
            .zip(entries.iter().skip(1))
            .all(|(a, b)| a.key < b.key);
        let map = MapDe {
            entries: entries.iter(),
            seen: (!sorted).then(HashSet::new),
            current: None,
            path: &path,
            ctx: self.ctx,
        };
        visitor.visit_map(map)
    }

    fn bytes(&self) -> Option<&'a Cow<'de, [u8]>> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Where item `index` of the list starting at `list_at` starts in `input`.
fn nth_item(input: &[u8], list_at: usize, index: usize) -> Option<usize> {
    if input.get(list_at) != Some(&b'l') {
        return None;
    }
    let mut pos = list_at + 1;
    for _ in 0..index {
        pos = skip_value(input, pos)?;
    }
    Some(pos)
}

/// The end of the (already decoded, so well-formed) value starting at `pos`;
/// `None` on anything unexpected. Iterative, so deep nesting costs no stack.
fn skip_value(input: &[u8], mut pos: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *input.get(pos)? {
            b'i' => {
                let body = input.get(pos + 1..)?;
                pos += 1 + body.iter().position(|&c| c == b'e')? + 1;
            }
            b'0'..=b'9' => {
                let rest = input.get(pos..)?;
                let colon = rest.iter().position(|&c| c == b':')?;
                let len: usize = std::str::from_utf8(rest.get(..colon)?).ok()?.parse().ok()?;
                pos = pos.checked_add(colon + 1)?.checked_add(len)?;
                if pos > input.len() {
                    return None;
                }
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

macro_rules! deserialize_int {
    ($($method:ident => $visit:ident($ty:ty),)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match self.value {
                Value::Int(i) => match <$ty>::try_from(*i) {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(de::Error::invalid_value(
                        Unexpected::Signed(*i),
                        &concat!("an integer that fits in ", stringify!($ty)),
                    )),
                },
                _ => Err(self.invalid_type(&visitor)),
            }
        }
    )*};
}

impl<'a, 'de> de::Deserializer<'de> for ValueDe<'a, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Bytes(Cow::Borrowed(b)) => visitor.visit_borrowed_bytes(b),
            Value::Bytes(Cow::Owned(b)) => visitor.visit_bytes(b),
            Value::List(items) => self.visit_list(items, visitor),
            Value::Dict(d) => self.visit_dict(d, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Int(0) => visitor.visit_bool(false),
            Value::Int(1) => visitor.visit_bool(true),
            Value::Int(i) => Err(de::Error::invalid_value(
                Unexpected::Signed(*i),
                &"0 or 1 for a bool",
            )),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    deserialize_int! {
        deserialize_i8 => visit_i8(i8),
        deserialize_i16 => visit_i16(i16),
        deserialize_i32 => visit_i32(i32),
        deserialize_i64 => visit_i64(i64),
        deserialize_i128 => visit_i128(i128),
        deserialize_u8 => visit_u8(u8),
        deserialize_u16 => visit_u16(u16),
        deserialize_u32 => visit_u32(u32),
        deserialize_u64 => visit_u64(u64),
        deserialize_u128 => visit_u128(u128),
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(de::Error::custom(format!(
            "bencode has no floating-point numbers (found {})",
            self.value.type_name()
        )))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let s = self.bytes().and_then(|b| std::str::from_utf8(b).ok());
        let mut chars = s.map(str::chars);
        match chars.as_mut().map(|c| (c.next(), c.next())) {
            Some((Some(c), None)) => visitor.visit_char(c),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes() {
            Some(Cow::Borrowed(b)) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => Err(not_utf8(&visitor)),
            },
            Some(Cow::Owned(b)) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => Err(not_utf8(&visitor)),
            },
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes() {
            Some(Cow::Borrowed(b)) => visitor.visit_borrowed_bytes(b),
            Some(Cow::Owned(b)) => visitor.visit_bytes(b),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // Bencode has no null: a value that is there is `Some`; an absent
        // dictionary key becomes `None` through serde's missing-field rule.
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        Err(self.invalid_type(&visitor))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        Err(self.invalid_type(&visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::List(items) => self.visit_list(items, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Dict(d) => self.visit_dict(d, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let path = self.path;
        match self.value {
            Value::Bytes(name) => visitor.visit_enum(EnumDe {
                variant: name,
                content: None,
                path: &path,
                ctx: self.ctx,
            }),
            Value::Dict(d) if d.len() == 1 => match d.entries().first() {
                Some(entry) => visitor.visit_enum(EnumDe {
                    variant: &entry.key,
                    content: Some(entry),
                    path: &path,
                    ctx: self.ctx,
                }),
                None => Err(self.invalid_type(&visitor)), // ok: len is 1
            },
            _ => Err(de::Error::invalid_type(
                self.unexpected(),
                &"a byte string or a one-key dictionary for an enum",
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes() {
            Some(key) => KeyDe { key }.deserialize_identifier(visitor),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // The value is already decoded and checked; nothing to walk.
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

fn not_utf8(exp: &dyn de::Expected) -> Error {
    de::Error::invalid_value(Unexpected::Other("byte string that is not UTF-8"), exp)
}

/// The items of a list.
struct SeqDe<'a, 'de> {
    items: std::slice::Iter<'a, Value<'de>>,
    index: usize,
    path: &'a Path<'a>,
    ctx: &'a Ctx<'a>,
}

impl<'a, 'de> de::SeqAccess<'de> for SeqDe<'a, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        let de = ValueDe {
            value: item,
            path: Path::Index {
                parent: self.path,
                index,
            },
            ctx: self.ctx,
        };
        seed.deserialize(de).map(Some).map_err(|e| de.locate(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a dictionary, first of duplicate keys only.
struct MapDe<'a, 'de> {
    entries: std::slice::Iter<'a, Entry<'de>>,
    /// Keys seen so far, kept only when the keys are not strictly sorted.
    seen: Option<HashSet<&'a [u8]>>,
    current: Option<&'a Entry<'de>>,
    path: &'a Path<'a>,
    ctx: &'a Ctx<'a>,
}

impl<'a, 'de> MapDe<'a, 'de> {
    fn value_de(&self, entry: &'a Entry<'de>) -> ValueDe<'a, 'de> {
        ValueDe {
            value: &entry.value,
            path: Path::Key {
                parent: self.path,
                key: &entry.key,
                at: (!entry.span.is_empty()).then_some(entry.span.start),
            },
            ctx: self.ctx,
        }
    }
}

impl<'a, 'de> de::MapAccess<'de> for MapDe<'a, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let entry = loop {
            let Some(entry) = self.entries.next() else {
                return Ok(None);
            };
            let first = match &mut self.seen {
                Some(seen) => seen.insert(&entry.key),
                None => true,
            };
            if first {
                break entry;
            }
        };
        self.current = Some(entry);
        // A bad key is reported at its value's offset, under its own name.
        let de = self.value_de(entry);
        seed.deserialize(KeyDe { key: &entry.key })
            .map(Some)
            .map_err(|e| de.locate(e))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let Some(entry) = self.current.take() else {
            return Err(de::Error::custom("map value requested before its key"));
        };
        let de = self.value_de(entry);
        seed.deserialize(de).map_err(|e| de.locate(e))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An enum: a byte string (unit variant) or a one-key dictionary.
struct EnumDe<'a, 'de> {
    variant: &'a Cow<'de, [u8]>,
    content: Option<&'a Entry<'de>>,
    path: &'a Path<'a>,
    ctx: &'a Ctx<'a>,
}

impl<'a, 'de> de::EnumAccess<'de> for EnumDe<'a, 'de> {
    type Error = Error;
    type Variant = VariantDe<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        let name = seed.deserialize(KeyDe { key: self.variant })?;
        let content = self.content.map(|entry| ValueDe {
            value: &entry.value,
            path: Path::Key {
                parent: self.path,
                key: &entry.key,
                at: (!entry.span.is_empty()).then_some(entry.span.start),
            },
            ctx: self.ctx,
        });
        Ok((name, VariantDe { content }))
    }
}

/// The content of an enum variant (`None` for a unit variant).
struct VariantDe<'a, 'de> {
    content: Option<ValueDe<'a, 'de>>,
}

impl<'a, 'de> de::VariantAccess<'de> for VariantDe<'a, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        match self.content {
            None => Ok(()),
            Some(de) => Err(de.locate(de.invalid_type(&"a unit variant (a byte string)"))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        match self.content {
            Some(de) => seed.deserialize(de).map_err(|e| de.locate(e)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        match self.content {
            Some(de) => de.deserialize_seq(visitor).map_err(|e| de.locate(e)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.content {
            Some(de) => de.deserialize_map(visitor).map_err(|e| de.locate(e)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

/// A dictionary key (or enum variant name): bytes, text, or a decimal integer.
struct KeyDe<'a, 'de> {
    key: &'a Cow<'de, [u8]>,
}

impl KeyDe<'_, '_> {
    fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.key).ok()
    }

    fn parse<T: std::str::FromStr>(&self, exp: &'static str) -> Result<T> {
        self.text()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| de::Error::invalid_value(Unexpected::Bytes(self.key), &exp))
    }
}

macro_rules! deserialize_key_int {
    ($($method:ident => $visit:ident($ty:ty),)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.parse::<$ty>(concat!("a decimal ", stringify!($ty), " key"))?)
        }
    )*};
}

impl<'a, 'de> de::Deserializer<'de> for KeyDe<'a, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.key {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => visitor.visit_borrowed_bytes(b),
            },
            Cow::Owned(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => visitor.visit_bytes(b),
            },
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.key {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => Err(not_utf8(&visitor)),
            },
            Cow::Owned(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_str(s),
                Err(_) => Err(not_utf8(&visitor)),
            },
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.key {
            Cow::Borrowed(b) => visitor.visit_borrowed_bytes(b),
            Cow::Owned(b) => visitor.visit_bytes(b),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    deserialize_key_int! {
        deserialize_i8 => visit_i8(i8),
        deserialize_i16 => visit_i16(i16),
        deserialize_i32 => visit_i32(i32),
        deserialize_i64 => visit_i64(i64),
        deserialize_i128 => visit_i128(i128),
        deserialize_u8 => visit_u8(u8),
        deserialize_u16 => visit_u16(u16),
        deserialize_u32 => visit_u32(u32),
        deserialize_u64 => visit_u64(u64),
        deserialize_u128 => visit_u128(u128),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(UnitOnly { key: self })
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char unit unit_struct seq tuple tuple_struct map struct
    }
}

/// A unit enum variant named by a dictionary key.
struct UnitOnly<'a, 'de> {
    key: KeyDe<'a, 'de>,
}

impl<'a, 'de> de::EnumAccess<'de> for UnitOnly<'a, 'de> {
    type Error = Error;
    type Variant = VariantDe<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        Ok((seed.deserialize(self.key)?, VariantDe { content: None }))
    }
}

// --- Deserialize for the value tree itself, so a `Value` can sit in a struct.

/// Builds a [`Value`] from any deserializer; borrows when the input allows.
struct ValueVisitor<'a>(PhantomData<Value<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = Value<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bencode value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value<'a>, E> {
        Ok(Value::Int(i64::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value<'a>, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'a>, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &"an integer that fits in i64"))
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Borrowed(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Owned(v.to_vec())))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Owned(v)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Borrowed(v.as_bytes())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Owned(v.as_bytes().to_vec())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value<'a>, E> {
        Ok(Value::Bytes(Cow::Owned(v.into_bytes())))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'a>, D::Error> {
        Value::deserialize(d)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'a>, D::Error> {
        Value::deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'a>, A::Error> {
        // The hint comes from the other side: cap it rather than trust it.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value<'a>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(key) = map.next_key_seed(KeySeed(PhantomData))? {
            entries.push(Entry {
                key,
                value: map.next_value()?,
                span: 0..0,
            });
        }
        Ok(Value::Dict(Dict::from_entries(entries)))
    }
}

/// Reads a dictionary key as bytes, borrowing when it can.
struct KeySeed<'a>(PhantomData<Value<'a>>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Cow<'a, [u8]>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match Value::deserialize(d)? {
            Value::Bytes(b) => Ok(b),
            other => Err(de::Error::invalid_type(
                Unexpected::Other(other.type_name()),
                &"a byte-string key",
            )),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    /// Reads any bencode value; dictionary entries get empty spans (only the
    /// decoder knows where bytes lie) and keep their order and duplicates.
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Dict<'a> {
    /// Reads a bencode dictionary (entries get empty spans).
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_map(ValueVisitor(PhantomData))? {
            Value::Dict(dict) => Ok(dict),
            other => Err(de::Error::invalid_type(
                Unexpected::Other(other.type_name()),
                &"a dictionary",
            )),
        }
    }
}
