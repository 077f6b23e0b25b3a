//! Bencoding (BEP 3): decoding with byte spans, encoding, and serde support.
//!
//! The main types are [`Value`] (an untyped value tree that borrows from the
//! input), [`Dict`] (whose entries remember the byte range of each value in the
//! original input, so an info-hash is computed over the exact `info` bytes) and
//! [`DecodeOptions`] (strict canonical BEP 3 or lenient, with limits on depth,
//! input length, string length and token count, checked before anything is
//! allocated, and an option to refuse repeated keys in lenient mode).
//! [`decode`] is lenient (trailing bytes ignored, non-canonical forms read),
//! [`decode_strict`] rejects every non-canonical form, and
//! [`DecodeOptions::decode_prefix`] reads one value and says where it ended.
//! Integers are `i64`; a larger one is an [`ErrorKind::IntOverflow`] error,
//! never a wrapped value. Errors carry the byte offset and the path of
//! dictionary keys and list indices that led there (`info.files[3].length`).
//!
//! For large untrusted input, [`DecodeOptions::decode_ref`] checks the same rules
//! in one pass and returns a [`ValueRef`] view instead of a tree: nothing is
//! allocated per token (a tree costs tens of bytes per token), and [`ListRef`] /
//! [`DictRef`] read items on demand, with their offsets in the input. The same
//! input gives the same verdict and the same error through both.
//!
//! Typed structs go through serde: [`from_bytes`] / [`from_bytes_strict`] /
//! [`DecodeOptions::from_bytes`] decode with the same decoder, limits and
//! error positions, then fill the type (type errors also name the offset and
//! key path of the offending value); [`from_value`] does the same from a tree.
//! [`to_bytes`] / [`to_value`] write canonical bencode (keys sorted, `None`
//! fields left out). [`as_bytes`] is the `#[serde(with)]` helper for
//! byte-buffer fields. [`Value`] and [`Dict`] implement `Serialize` and
//! `Deserialize`, so an untyped part can sit inside a typed struct; compare
//! trees with [`Value::content_eq`] when spans should not count.
//!
//! This crate knows nothing of torrents (see `bt-meta`), does no I/O and does
//! not decode incrementally from a stream: it works on whole buffers.

mod cursor;
mod decode;
mod encode;
mod error;
mod scan;
mod typed;
mod value;
mod view;

pub use decode::{decode, decode_strict, DecodeOptions};
pub use encode::encode_bytes;
pub use error::{Error, ErrorKind, Result};
pub use typed::{as_bytes, from_bytes, from_bytes_strict, from_value, to_bytes, to_value};
pub use value::{Dict, Entry, Value};
pub use view::{DictIter, DictRef, EntryRef, Kind, ListIter, ListRef, PathStep, ValueRef};
