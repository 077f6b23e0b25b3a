//! The decoder: bytes to [`Value`], with byte spans, strict or lenient, and limits.

use std::borrow::Cow;

use crate::error::{push_index, push_key, Error, ErrorKind};
use crate::value::{Dict, Entry, Value};

/// Limits and strictness for decoding. `Default` is lenient with sane limits.
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
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            strict: false,
            max_depth: 100,
            max_input_len: 64 << 20,
            max_string_len: 32 << 20,
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
        let mut d = Decoder {
            input,
            pos: 0,
            opts: self,
            path: Vec::new(),
            failure: None,
        };
        let value = d.run()?;
        Ok((value, d.pos))
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

/// Marker that decoding failed; the [`Error`] itself waits in
/// [`Decoder::failure`]. Keeping the full error (with its path string) out of
/// every `Result` makes the hot path move 32-byte values, not 100-byte ones.
struct Fail;

type Step<T> = std::result::Result<T, Fail>;

struct Decoder<'a, 'o> {
    input: &'a [u8],
    pos: usize,
    opts: &'o DecodeOptions,
    path: Vec<Seg<'a>>,
    failure: Option<Error>,
}

impl<'a> Decoder<'a, '_> {
    /// Decodes one value at the current position.
    fn run(&mut self) -> Result<Value<'a>, Error> {
        self.value(0).map_err(|Fail| {
            self.failure
                .take()
                // ok: every Fail is made by fail(), which sets failure first
                .unwrap_or_else(|| Error::new(ErrorKind::UnexpectedEof, self.pos, String::new()))
        })
    }

    /// Records the error (rendering the path only now) and returns the marker.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, kind: ErrorKind, offset: usize) -> Fail {
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => push_key(&mut path, k),
                Seg::Index(i) => push_index(&mut path, *i),
            }
        }
        self.failure = Some(Error::new(kind, offset, path));
        Fail
    }

    #[inline]
    fn peek(&mut self) -> Step<u8> {
        match self.input.get(self.pos) {
            Some(&c) => Ok(c),
            None => Err(self.fail(ErrorKind::UnexpectedEof, self.pos)),
        }
    }

    fn value(&mut self, depth: usize) -> Step<Value<'a>> {
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(|b| Value::Bytes(Cow::Borrowed(b))),
            b'l' | b'd' if depth >= self.opts.max_depth => Err(self.fail(
                ErrorKind::DepthExceeded {
                    limit: self.opts.max_depth,
                },
                self.pos,
            )),
            b'l' => self.list(depth + 1),
            b'd' => self.dict(depth + 1),
            other => Err(self.fail(ErrorKind::InvalidTypeByte(other), self.pos)),
        }
    }

    /// Reads the digits of a non-negative decimal number. Returns the value
    /// (`None` if it does not fit in `u64`), the number of digits and where they
    /// start. Overflow is left to the caller so that syntax errors that follow
    /// (a missing `e` or `:`) are reported first.
    #[inline]
    fn digits(&mut self) -> Step<(Option<u64>, usize, usize)> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or_default();
        let count = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 {
            let kind = if rest.is_empty() {
                ErrorKind::UnexpectedEof
            } else {
                ErrorKind::ExpectedDigit
            };
            return Err(self.fail(kind, start));
        }
        self.pos += count;
        let digits = rest.get(..count).unwrap_or_default();
        let n = if count <= 19 {
            // At most 19 digits cannot overflow a u64: no checks needed.
            Some(
                digits
                    .iter()
                    .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')),
            )
        } else {
            digits.iter().try_fold(0u64, |n, &c| {
                n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
            })
        };
        Ok((n, count, start))
    }

    fn int(&mut self) -> Step<i64> {
        let open = self.pos;
        self.pos += 1; // 'i'
        let negative = self.input.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let (magnitude, count, start) = self.digits()?;
        if self.opts.strict {
            if count > 1 && self.input.get(start) == Some(&b'0') {
                return Err(self.fail(ErrorKind::IntLeadingZero, start));
            }
            if negative && magnitude == Some(0) {
                return Err(self.fail(ErrorKind::IntNegativeZero, open));
            }
        }
        match self.input.get(self.pos) {
            Some(b'e') => self.pos += 1,
            Some(_) => return Err(self.fail(ErrorKind::ExpectedEnd, self.pos)),
            None => return Err(self.fail(ErrorKind::UnexpectedEof, self.pos)),
        }
        let Some(magnitude) = magnitude else {
            return Err(self.fail(ErrorKind::IntOverflow, open));
        };
        let value = if negative {
            if magnitude > i64::MAX as u64 + 1 {
                return Err(self.fail(ErrorKind::IntOverflow, open));
            }
            (magnitude as i128).wrapping_neg() as i64
        } else {
            match i64::try_from(magnitude) {
                Ok(v) => v,
                Err(_) => return Err(self.fail(ErrorKind::IntOverflow, open)),
            }
        };
        Ok(value)
    }

    fn bytes(&mut self) -> Step<&'a [u8]> {
        let (len, count, start) = self.digits()?;
        if self.opts.strict && count > 1 && self.input.get(start) == Some(&b'0') {
            return Err(self.fail(ErrorKind::StringLengthLeadingZero, start));
        }
        match self.input.get(self.pos) {
            Some(b':') => self.pos += 1,
            Some(_) => return Err(self.fail(ErrorKind::ExpectedColon, self.pos)),
            None => return Err(self.fail(ErrorKind::UnexpectedEof, self.pos)),
        }
        // The limit is checked before the input's end: a length over the limit
        // is final, whereas "unexpected end" would invite a caller holding a
        // partial buffer to wait for more bytes.
        let Some(len) = len else {
            return Err(self.fail(ErrorKind::IntOverflow, start));
        };
        if len > self.opts.max_string_len as u64 {
            let limit = self.opts.max_string_len;
            return Err(self.fail(ErrorKind::StringTooLong { len, limit }, start));
        }
        let len = len as usize; // ok: bounded by max_string_len above
        match self.input.get(self.pos..).and_then(|rest| rest.get(..len)) {
            Some(s) => {
                self.pos += len;
                Ok(s)
            }
            None => Err(self.fail(ErrorKind::UnexpectedEof, self.input.len())),
        }
    }

    fn list(&mut self, depth: usize) -> Step<Value<'a>> {
        self.pos += 1; // 'l'
        let mut items = Vec::new();
        loop {
            if self.peek()? == b'e' {
                self.pos += 1;
                return Ok(Value::List(items));
            }
            self.path.push(Seg::Index(items.len()));
            let item = self.value(depth)?;
            self.path.pop();
            items.push(item);
        }
    }

    fn dict(&mut self, depth: usize) -> Step<Value<'a>> {
        self.pos += 1; // 'd'
        let mut entries: Vec<Entry<'a>> = Vec::new();
        loop {
            let c = self.peek()?;
            if c == b'e' {
                self.pos += 1;
                return Ok(Value::Dict(Dict::from_entries(entries)));
            }
            if !c.is_ascii_digit() {
                return Err(self.fail(ErrorKind::DictKeyNotString, self.pos));
            }
            let key_at = self.pos;
            let key = self.bytes()?;
            if self.opts.strict {
                if let Some(prev) = entries.last() {
                    match prev.key.as_ref().cmp(key) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Equal => {
                            return Err(self.fail(ErrorKind::DictDuplicateKey, key_at))
                        }
                        std::cmp::Ordering::Greater => {
                            return Err(self.fail(ErrorKind::DictUnsortedKeys, key_at))
                        }
                    }
                }
            }
            if self.peek()? == b'e' {
                return Err(self.fail(ErrorKind::DictMissingValue, self.pos));
            }
            self.path.push(Seg::Key(key));
            let start = self.pos;
            let value = self.value(depth)?;
            self.path.pop();
            entries.push(Entry {
                key: Cow::Borrowed(key),
                value,
                span: start..self.pos,
            });
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
