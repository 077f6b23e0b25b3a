//! Bencoding (BEP 3): decoding with byte spans, encoding, and serde support.
//!
//! The main types are [`Value`] (an untyped value tree that borrows from the
//! input), [`Dict`] (whose entries remember the byte range of each value in the
//! original input, so an info-hash is computed over the exact `info` bytes) and
//! [`DecodeOptions`] (strict canonical BEP 3 or lenient, with limits on depth,
//! input length and string length). Errors carry the byte offset and the path of
//! dictionary keys that led there.
//!
//! This crate knows nothing of torrents; see `bt-meta` for that.

mod decode;
mod encode;
mod error;
mod value;

pub use decode::{decode, decode_strict, DecodeOptions};
pub use encode::encode_bytes;
pub use error::{Error, ErrorKind, Result};
pub use value::{Dict, Entry, Value};
