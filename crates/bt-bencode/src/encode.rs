//! The encoder: [`Value`] to bytes.

use crate::value::Value;

impl Value<'_> {
    /// Encodes the value; dictionaries are written in the order they hold
    /// (built with [`crate::Dict::insert`], that is sorted, canonical order).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d.iter() {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Appends a byte string (`<len>:<bytes>`) to `out`.
pub fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use crate::{decode_strict, Dict, Value};

    #[test]
    fn canonical_round_trip() {
        let mut d = Dict::new();
        d.insert(&b"zeta"[..], Value::Int(-3));
        d.insert(
            &b"alpha"[..],
            Value::List(vec![Value::bytes(b"x"), Value::Int(0)]),
        );
        let bytes = Value::Dict(d).encode();
        assert_eq!(bytes, b"d5:alphal1:xi0ee4:zetai-3ee");
        assert!(decode_strict(&bytes).is_ok());
    }
}
