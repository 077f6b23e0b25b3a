//! `#[serde(with = "bt_bencode::as_bytes")]`: a byte-buffer field as one bencode
//! byte string rather than a list of integers.
//!
//! Works for `Vec<u8>`, `[u8; N]` (the length is checked: a 19-byte string
//! for a `[u8; 20]` is an error) and anything else that is `AsRef<[u8]>` and
//! `TryFrom<Vec<u8>>`.
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Peer {
//!     #[serde(with = "bt_bencode::as_bytes")]
//!     id: [u8; 4],
//! }
//! let bytes = bt_bencode::to_bytes(&Peer { id: *b"abcd" }).unwrap();
//! assert_eq!(bytes, b"d2:id4:abcde");
//! assert_eq!(bt_bencode::from_bytes::<Peer>(&bytes).unwrap().id, *b"abcd");
//! assert!(bt_bencode::from_bytes::<Peer>(b"d2:id3:abce").is_err());
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Writes the bytes as one byte string.
pub fn serialize<T, S>(bytes: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: AsRef<[u8]> + ?Sized,
    S: Serializer,
{
    serializer.serialize_bytes(bytes.as_ref())
}

/// Reads one byte string and converts it, failing if the conversion does
/// (for example a wrong length for an array).
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: TryFrom<Vec<u8>>,
    D: Deserializer<'de>,
{
    let buf = deserializer.deserialize_byte_buf(BufVisitor)?;
    let len = buf.len();
    T::try_from(buf)
        .map_err(|_| de::Error::invalid_length(len, &"a byte string of the length the field needs"))
}

struct BufVisitor;

impl<'de> Visitor<'de> for BufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // For self-describing formats that write bytes as a list of numbers.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}
