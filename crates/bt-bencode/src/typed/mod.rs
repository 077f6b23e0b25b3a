//! serde support: typed structs from and to bencode.
//!
//! [`from_bytes`] first decodes the input into a [`crate::Value`] with the ordinary
//! decoder, then runs a serde `Deserializer` of our own over that tree;
//! [`to_bytes`] runs a `Serializer` of our own that builds a canonical
//! [`crate::Value`] (dictionary keys sorted, no duplicates) and encodes it.
//!
//! Why our own deserializer rather than `serde_bencode` underneath: every typed
//! decode then goes through the one decoder, so the limits (depth, input
//! length, string length, checked before anything is allocated), strict or
//! lenient canonical-form checking, and errors that carry a byte offset and a
//! key path (`info.files[3].length`) apply to typed decoding exactly as to
//! [`crate::Value`] decoding. A second parser would have its own limits, its own
//! leniency and errors with no position. Typed decoding also reads duplicate
//! keys as [`crate::Dict::get`] does (the first one wins), so the typed and the
//! untyped view of a lenient input never disagree.
//!
//! Mapping: integers of every width (range-checked against the target type),
//! `bool` as `i0e`/`i1e`, `String`/`&str` from UTF-8 byte strings, byte
//! buffers through `deserialize_bytes`/`deserialize_byte_buf` (use
//! [`crate::as_bytes`] for `Vec<u8>` and `[u8; N]` fields), `Option` (a missing
//! key is `None`; `None` fields are left out when serializing), structs and
//! maps as dictionaries (keys: strings, bytes, or integers as decimal text),
//! sequences and tuples as lists, newtypes as their content, unit enum
//! variants as byte strings and other variants as one-key dictionaries. There
//! are no floats, no unit and no null in bencode: those are errors.
//!
//! Error positions in typed decoding: a type error names the key path of the
//! offending value and its byte offset (the start of its encoding). Offsets
//! of dictionary values come from their recorded spans; offsets of list items
//! are found by rescanning the input only when an error is reported, so the
//! successful path costs nothing extra.

pub mod as_bytes;
mod de;
mod ser;

pub use de::{from_bytes, from_bytes_strict, from_value};
pub use ser::{to_bytes, to_value};

#[cfg(test)]
mod tests;
