//! The typed encoder: a serde `Serializer` that builds a canonical [`Value`].

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::value::{Dict, Entry, Value};

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(ErrorKind::Serialize(msg.to_string()), 0, String::new())
    }
}

fn unsupported(what: &str) -> Error {
    ser::Error::custom(format!("bencode cannot represent {what}"))
}

/// Serializes `value` into canonical bencode (dictionary keys sorted).
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(to_value(value)?.encode())
}

/// Serializes `value` into a value tree with sorted dictionary keys; `None`
/// struct fields and map values are left out.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value<'static>> {
    value
        .serialize(ValueSer)?
        .ok_or_else(|| unsupported("None outside a dictionary"))
}

/// Builds one value; `Ok(None)` is a `None` that the enclosing dictionary drops.
struct ValueSer;

fn int(v: impl TryInto<i64> + Copy + fmt::Display) -> Result<Option<Value<'static>>> {
    match v.try_into() {
        Ok(i) => Ok(Some(Value::Int(i))),
        Err(_) => Err(ser::Error::custom(format!(
            "integer {v} does not fit in 64 signed bits"
        ))),
    }
}

fn bytes(b: impl Into<Vec<u8>>) -> Result<Option<Value<'static>>> {
    Ok(Some(Value::Bytes(Cow::Owned(b.into()))))
}

/// A one-key dictionary `{variant: value}` (externally tagged enum variant).
fn tagged(variant: &'static str, value: Value<'static>) -> Value<'static> {
    Value::Dict(Dict::from_entries(vec![Entry {
        key: Cow::Borrowed(variant.as_bytes()),
        value,
        span: 0..0,
    }]))
}

impl ser::Serializer for ValueSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    type SerializeSeq = SeqSer;
    type SerializeTuple = SeqSer;
    type SerializeTupleStruct = SeqSer;
    type SerializeTupleVariant = SeqSer;
    type SerializeMap = MapSer;
    type SerializeStruct = MapSer;
    type SerializeStructVariant = MapSer;

    fn serialize_bool(self, v: bool) -> Result<Self::Ok> {
        int(i64::from(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Self::Ok> {
        int(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<Self::Ok> {
        Err(unsupported("a floating-point number"))
    }
    fn serialize_f64(self, _v: f64) -> Result<Self::Ok> {
        Err(unsupported("a floating-point number"))
    }
    fn serialize_char(self, v: char) -> Result<Self::Ok> {
        bytes(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<Self::Ok> {
        bytes(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Self::Ok> {
        bytes(v)
    }
    fn serialize_none(self) -> Result<Self::Ok> {
        Ok(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Self::Ok> {
        Err(unsupported("()"))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Self::Ok> {
        Err(unsupported(&format!("unit struct {name}")))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Self::Ok> {
        bytes(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Self::Ok> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Self::Ok> {
        let inner = value
            .serialize(ValueSer)
            .map_err(|e| e.under_key(variant.as_bytes()))?
            .ok_or_else(|| {
                unsupported("None as enum variant content").under_key(variant.as_bytes())
            })?;
        Ok(Some(tagged(variant, inner)))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer> {
        Ok(SeqSer::new(len.unwrap_or(0), None))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer> {
        Ok(SeqSer::new(len, None))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer> {
        Ok(SeqSer::new(len, None))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer> {
        Ok(SeqSer::new(len, Some(variant)))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer> {
        Ok(MapSer::new(len.unwrap_or(0), None))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapSer> {
        Ok(MapSer::new(len, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapSer> {
        Ok(MapSer::new(len, Some(variant)))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Builds a list (or a tuple variant, `{variant: [...]}`).
struct SeqSer {
    items: Vec<Value<'static>>,
    variant: Option<&'static str>,
}

impl SeqSer {
    fn new(len: usize, variant: Option<&'static str>) -> Self {
        // `len` comes from a value in memory, not from untrusted input.
        Self {
            items: Vec::with_capacity(len),
            variant,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let index = self.items.len();
        let item = value
            .serialize(ValueSer)
            .and_then(|v| v.ok_or_else(|| unsupported("None in a list")))
            .map_err(|e| self.locate(e.under_index(index)))?;
        self.items.push(item);
        Ok(())
    }

    fn locate(&self, e: Error) -> Error {
        match self.variant {
            Some(v) => e.under_key(v.as_bytes()),
            None => e,
        }
    }

    fn finish(self) -> Result<Option<Value<'static>>> {
        let list = Value::List(self.items);
        Ok(Some(match self.variant {
            Some(v) => tagged(v, list),
            None => list,
        }))
    }
}

impl ser::SerializeSeq for SeqSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

/// Builds a dictionary (or a struct variant, `{variant: {...}}`); keys are
/// sorted at the end, and a repeated key is an error.
struct MapSer {
    entries: Vec<Entry<'static>>,
    key: Option<Vec<u8>>,
    variant: Option<&'static str>,
}

impl MapSer {
    fn new(len: usize, variant: Option<&'static str>) -> Self {
        Self {
            entries: Vec::with_capacity(len),
            key: None,
            variant,
        }
    }

    fn locate(&self, e: Error) -> Error {
        match self.variant {
            Some(v) => e.under_key(v.as_bytes()),
            None => e,
        }
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) -> Result<()> {
        let value = value
            .serialize(ValueSer)
            .map_err(|e| self.locate(e.under_key(&key)))?;
        // `None` leaves the key out: bencode has no null.
        if let Some(value) = value {
            self.entries.push(Entry {
                key: Cow::Owned(key),
                value,
                span: 0..0,
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Option<Value<'static>>> {
        self.entries.sort_by(|a, b| a.key.cmp(&b.key));
        let duplicate = self
            .entries
            .iter()
            .zip(self.entries.iter().skip(1))
            .find(|(a, b)| a.key == b.key);
        if let Some((a, _)) = duplicate {
            let e = ser::Error::custom(format!(
                "duplicate dictionary key {:?}",
                String::from_utf8_lossy(&a.key)
            ));
            return Err(self.locate(e));
        }
        let dict = Value::Dict(Dict::from_entries(self.entries));
        Ok(Some(match self.variant {
            Some(v) => tagged(v, dict),
            None => dict,
        }))
    }
}

impl ser::SerializeMap for MapSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySer).map_err(|e| self.locate(e))?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let Some(key) = self.key.take() else {
            return Err(ser::Error::custom("map value serialized before its key"));
        };
        self.entry(key, value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

impl ser::SerializeStruct for MapSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.entry(key.as_bytes().to_vec(), value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for MapSer {
    type Ok = Option<Value<'static>>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.entry(key.as_bytes().to_vec(), value)
    }
    fn end(self) -> Result<Self::Ok> {
        self.finish()
    }
}

/// Serializes a dictionary key: text, bytes, or an integer as decimal text.
struct KeySer;

fn bad_key(what: &str) -> Error {
    ser::Error::custom(format!(
        "dictionary key must be a string, bytes or an integer, not {what}"
    ))
}

impl ser::Serializer for KeySer {
    type Ok = Vec<u8>;
    type Error = Error;
    type SerializeSeq = ser::Impossible<Vec<u8>, Error>;
    type SerializeTuple = ser::Impossible<Vec<u8>, Error>;
    type SerializeTupleStruct = ser::Impossible<Vec<u8>, Error>;
    type SerializeTupleVariant = ser::Impossible<Vec<u8>, Error>;
    type SerializeMap = ser::Impossible<Vec<u8>, Error>;
    type SerializeStruct = ser::Impossible<Vec<u8>, Error>;
    type SerializeStructVariant = ser::Impossible<Vec<u8>, Error>;

    fn serialize_bool(self, _v: bool) -> Result<Vec<u8>> {
        Err(bad_key("a bool"))
    }
    fn serialize_i8(self, v: i8) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_i16(self, v: i16) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_i32(self, v: i32) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_i64(self, v: i64) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_i128(self, v: i128) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_u8(self, v: u8) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_u16(self, v: u16) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_u32(self, v: u32) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_u64(self, v: u64) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_u128(self, v: u128) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_f32(self, _v: f32) -> Result<Vec<u8>> {
        Err(bad_key("a float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<Vec<u8>> {
        Err(bad_key("a float"))
    }
    fn serialize_char(self, v: char) -> Result<Vec<u8>> {
        Ok(v.to_string().into_bytes())
    }
    fn serialize_str(self, v: &str) -> Result<Vec<u8>> {
        Ok(v.as_bytes().to_vec())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>> {
        Ok(v.to_vec())
    }
    fn serialize_none(self) -> Result<Vec<u8>> {
        Err(bad_key("None"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Vec<u8>> {
        Err(bad_key("()"))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Vec<u8>> {
        Err(bad_key(name))
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Vec<u8>> {
        Ok(variant.as_bytes().to_vec())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Vec<u8>> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Vec<u8>> {
        Err(bad_key("an enum variant with content"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(bad_key("a list"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(bad_key("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(bad_key("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(bad_key("an enum variant with content"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(bad_key("a map"))
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(bad_key(name))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(bad_key("an enum variant with content"))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

// --- Serialize for the value tree itself, so a `Value` can sit in a struct.

/// A byte string for `serialize_bytes` (dictionary keys of a [`Value`]).
struct RawBytes<'b>(&'b [u8]);

impl Serialize for RawBytes<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for Value<'_> {
    /// Integers as `i64`, byte strings as bytes, lists as sequences,
    /// dictionaries as maps with byte-string keys.
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Int(i) => s.serialize_i64(*i),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::List(items) => s.collect_seq(items),
            Value::Dict(d) => d.serialize(s),
        }
    }
}

impl Serialize for Dict<'_> {
    /// A map with byte-string keys, in the dictionary's order.
    fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(&RawBytes(k), v)?;
        }
        map.end()
    }
}
