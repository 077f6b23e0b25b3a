//! The tree decoder: bytes to [`Value`], with byte spans, strict or lenient, and limits.

use std::borrow::Cow;

use crate::cursor::{first_repeat, Cursor, Fail, Step};
use crate::error::{push_index, push_key, Error, ErrorKind};
use crate::value::{Dict, Entry, Value};

/// Limits and strictness for decoding. `Default` is lenient with sane limits.
///
/// The same options drive the tree decoder ([`DecodeOptions::decode`]) and the
/// validating scanner behind [`DecodeOptions::decode_ref`]; both check the same
/// rules in the same order and report the same errors.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Reject what BEP 3 calls non-canonical: leading zeros, `-0`, unsorted or
    /// duplicate keys, and anything after the value.
    pub strict: bool,
    /// Deepest nesting of lists and dictionaries accepted.
    pub max_depth: usize,
    /// Longest input accepted, in bytes.
    pub max_input_len: usize,
    /// Longest single byte string accepted, in bytes.
    pub max_string_len: usize,
    /// Most tokens accepted: every value (integer, string, list, dictionary) and
    /// every dictionary key counts one. A [`Value`] tree costs tens of bytes per
    /// token, so this bounds what a decoded tree can cost whatever the input holds.
    pub max_tokens: usize,
    /// Also in lenient mode, refuse a dictionary that holds a key twice
    /// ([`ErrorKind::DictDuplicateKey`], at the second occurrence). Strict mode
    /// refuses them anyway.
    pub reject_duplicate_keys: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            strict: false,
            max_depth: 100,
            max_input_len: 64 << 20,
            max_string_len: 32 << 20,
            max_tokens: 10_000_000,
            reject_duplicate_keys: false,
        }
    }
}

impl DecodeOptions {
    /// The default limits with strict (canonical BEP 3) checking.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    /// Decodes exactly one value; in strict mode nothing may follow it, in
    /// lenient mode trailing bytes are ignored.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Value<'a>, Error> {
        let (value, end) = self.decode_prefix(input)?;
        if self.strict && end != input.len() {
            return Err(Error::new(ErrorKind::TrailingData, end, String::new()));
        }
        Ok(value)
    }

    /// Decodes one value at the start of `input` and returns it with the number
    /// of bytes it took; what follows is left alone (for ut_metadata and KRPC).
    pub fn decode_prefix<'a>(&self, input: &'a [u8]) -> Result<(Value<'a>, usize), Error> {
        self.check_input_len(input)?;
        let mut d = Decoder {
            cur: Cursor::new(input, self),
            path: Vec::new(),
        };
        let value = d.run()?;
        Ok((value, d.cur.pos))
    }

    /// Fails with [`ErrorKind::InputTooLong`] if `input` is over the limit.
    pub(crate) fn check_input_len(&self, input: &[u8]) -> Result<(), Error> {
        if input.len() > self.max_input_len {
            return Err(Error::new(
                ErrorKind::InputTooLong {
                    len: input.len(),
                    limit: self.max_input_len,
                },
                0,
                String::new(),
            ));
        }
        Ok(())
    }
}

/// Decodes one value leniently (trailing bytes ignored) with default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    DecodeOptions::default().decode(input)
}

/// Decodes one value in strict canonical form with default limits.
pub fn decode_strict(input: &[u8]) -> Result<Value<'_>, Error> {
    DecodeOptions::strict().decode(input)
}

/// One step of the path from the root to the value being decoded.
enum Seg<'a> {
    Key(&'a [u8]),
    Index(usize),
}

struct Decoder<'a, 'o> {
    cur: Cursor<'a, 'o>,
    /// Where the value being decoded sits; left as it was when a step fails (the
    /// segments are popped only on success), so the error's path is read from it.
    path: Vec<Seg<'a>>,
}

impl<'a> Decoder<'a, '_> {
    /// Decodes one value at the current position.
    fn run(&mut self) -> Result<Value<'a>, Error> {
        self.value(0).map_err(|Fail| {
            let (kind, offset) = self.cur.take_bad();
            let mut path = String::new();
            for seg in &self.path {
                match seg {
                    Seg::Key(k) => push_key(&mut path, k),
                    Seg::Index(i) => push_index(&mut path, *i),
                }
            }
            Error::new(kind, offset, path)
        })
    }

    fn value(&mut self, depth: usize) -> Step<Value<'a>> {
        let c = self.cur.peek()?;
        self.cur.count_token()?;
        match c {
            b'i' => self.cur.int().map(Value::Int),
            b'0'..=b'9' => {
                let range = self.cur.bytes()?;
                Ok(Value::Bytes(Cow::Borrowed(self.cur.slice(range))))
            }
            b'l' | b'd' => {
                self.cur.check_depth(depth)?;
                if c == b'l' {
                    self.list(depth + 1)
                } else {
                    self.dict(depth + 1)
                }
            }
            other => Err(self
                .cur
                .fail(ErrorKind::InvalidTypeByte(other), self.cur.pos)),
        }
    }

    fn list(&mut self, depth: usize) -> Step<Value<'a>> {
        self.cur.pos += 1; // 'l'
        let mut items = Vec::new();
        loop {
            if self.cur.peek()? == b'e' {
                self.cur.pos += 1;
                return Ok(Value::List(items));
            }
            self.path.push(Seg::Index(items.len()));
            let item = self.value(depth)?;
            self.path.pop();
            items.push(item);
        }
    }

    fn dict(&mut self, depth: usize) -> Step<Value<'a>> {
        self.cur.pos += 1; // 'd'
        let mut entries: Vec<Entry<'a>> = Vec::new();
        let mut sorted = true;
        // Where each key starts, kept only to report a repeated one.
        let mut key_offsets = Vec::new();
        loop {
            let c = self.cur.peek()?;
            if c == b'e' {
                if !sorted && self.cur.opts.reject_duplicate_keys {
                    let keys = entries.iter().map(|e| e.key.as_ref());
                    if let Some(at) = first_repeat(keys.zip(key_offsets.iter().copied())) {
                        return Err(self.cur.fail(ErrorKind::DictDuplicateKey, at));
                    }
                }
                self.cur.pos += 1;
                return Ok(Value::Dict(Dict::from_entries(entries)));
            }
            if !c.is_ascii_digit() {
                return Err(self.cur.fail(ErrorKind::DictKeyNotString, self.cur.pos));
            }
            let key_at = self.cur.pos;
            self.cur.count_token()?;
            let range = self.cur.bytes()?;
            let key = self.cur.slice(range);
            if let Some(prev) = entries.last() {
                let order = prev.key.as_ref().cmp(key);
                if self.cur.opts.strict {
                    match order {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            return Err(self.cur.fail(ErrorKind::DictDuplicateKey, key_at))
                        }
                        std::cmp::Ordering::Greater => {
                            return Err(self.cur.fail(ErrorKind::DictUnsortedKeys, key_at))
                        }
                    }
                }
                sorted &= order.is_lt();
            }
            if self.cur.peek()? == b'e' {
                return Err(self.cur.fail(ErrorKind::DictMissingValue, self.cur.pos));
            }
            self.path.push(Seg::Key(key));
            let start = self.cur.pos;
            let value = self.value(depth)?;
            self.path.pop();
            entries.push(Entry {
                key: Cow::Borrowed(key),
                value,
                span: start..self.cur.pos,
            });
            if self.cur.opts.reject_duplicate_keys {
                key_offsets.push(key_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(input: &[u8], strict: bool) -> ErrorKind {
        let opts = if strict {
            DecodeOptions::strict()
        } else {
            DecodeOptions::default()
        };
        opts.decode(input).unwrap_err().kind
    }

    #[test]
    fn decodes_each_type() {
        assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-7e").unwrap(), Value::Int(-7));
        assert_eq!(decode(b"4:spam").unwrap(), Value::bytes(b"spam"));
        assert_eq!(decode(b"0:").unwrap(), Value::bytes(b""));
        let l = decode(b"l4:spami1ee").unwrap();
        assert_eq!(l.as_list().unwrap().len(), 2);
        let d = decode(b"d3:cow3:moo4:spam4:eggse").unwrap();
        let d = d.as_dict().unwrap();
        assert_eq!(d.get(b"cow").unwrap().as_str(), Some("moo"));
        assert_eq!(d.span(b"spam"), Some(17..23));
    }

    #[test]
    fn i64_edges() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap(),
            Value::Int(i64::MIN)
        );
        assert_eq!(
            kind(b"i9223372036854775808e", false),
            ErrorKind::IntOverflow
        );
        assert_eq!(
            kind(b"i-9223372036854775809e", false),
            ErrorKind::IntOverflow
        );
        assert_eq!(
            kind(b"i99999999999999999999999e", false),
            ErrorKind::IntOverflow
        );
    }

    #[test]
    fn malformed() {
        assert_eq!(kind(b"", false), ErrorKind::UnexpectedEof);
        assert_eq!(kind(b"i42", false), ErrorKind::UnexpectedEof);
        assert_eq!(kind(b"ie", false), ErrorKind::ExpectedDigit);
        assert_eq!(kind(b"i-e", false), ErrorKind::ExpectedDigit);
        assert_eq!(kind(b"i4x2e", false), ErrorKind::ExpectedEnd);
        assert_eq!(kind(b"x", false), ErrorKind::InvalidTypeByte(b'x'));
        assert_eq!(kind(b"5:abc", false), ErrorKind::UnexpectedEof);
        assert_eq!(kind(b"3abc", false), ErrorKind::ExpectedColon);
        assert_eq!(kind(b"di1ei2ee", false), ErrorKind::DictKeyNotString);
        assert_eq!(kind(b"d1:ae", false), ErrorKind::DictMissingValue);
        assert_eq!(kind(b"l", false), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn strict_rejects_non_canonical_lenient_reads_it() {
        for (input, k) in [
            (&b"i03e"[..], ErrorKind::IntLeadingZero),
            (b"i-0e", ErrorKind::IntNegativeZero),
            (b"03:abc", ErrorKind::StringLengthLeadingZero),
            (b"d1:bi1e1:ai2ee", ErrorKind::DictUnsortedKeys),
            (b"d1:ai1e1:ai2ee", ErrorKind::DictDuplicateKey),
            (b"i1ei2e", ErrorKind::TrailingData),
        ] {
            assert_eq!(kind(input, true), k, "{}", String::from_utf8_lossy(input));
            assert!(decode(input).is_ok());
        }
    }

    #[test]
    fn depth_limit() {
        let deep = [vec![b'l'; 101], vec![b'e'; 101]].concat();
        assert_eq!(kind(&deep, false), ErrorKind::DepthExceeded { limit: 100 });
        let ok = [vec![b'l'; 100], vec![b'e'; 100]].concat();
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn error_names_offset_and_path() {
        let e = decode(b"d4:infod5:filesl d1:xi1eeee").unwrap_err();
        assert_eq!(e.offset, 16);
        assert_eq!(e.path, "info.files[0]");
        assert!(e.to_string().contains("at byte 16"), "{e}");
        assert!(e.to_string().contains("info.files[0]"), "{e}");
    }

    #[test]
    fn huge_string_length_is_an_error_not_an_allocation() {
        assert!(matches!(
            kind(b"99999999999:x", false),
            ErrorKind::StringTooLong { .. }
        ));
        assert_eq!(
            kind(b"999999999999999999999999:x", false),
            ErrorKind::IntOverflow
        );
    }

    #[test]
    fn prefix_reports_consumed() {
        let (v, n) = DecodeOptions::default()
            .decode_prefix(b"d1:ai1eeRAW")
            .unwrap();
        assert_eq!(n, 8);
        assert_eq!(v.as_dict().unwrap().get(b"a"), Some(&Value::Int(1)));
    }
}
