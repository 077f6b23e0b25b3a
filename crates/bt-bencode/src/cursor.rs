//! Reading scalar tokens (integers, byte strings) at a position, shared by the tree
//! decoder ([`crate::decode`]) and the validating scanner ([`crate::scan`]), so both
//! check the same things in the same order and report the same errors.

use std::ops::Range;

use crate::decode::DecodeOptions;
use crate::error::ErrorKind;

/// Marker that reading failed; the kind and offset wait in [`Cursor::bad`].
/// Keeping the error out of every `Result` makes the hot path move small values.
pub(crate) struct Fail;

/// A step of decoding that may fail.
pub(crate) type Step<T> = std::result::Result<T, Fail>;

/// A position in the input with the options that decide what is accepted.
pub(crate) struct Cursor<'a, 'o> {
    pub input: &'a [u8],
    pub pos: usize,
    pub opts: &'o DecodeOptions,
    /// What went wrong and where, once a step returned [`Fail`].
    pub bad: Option<(ErrorKind, usize)>,
    /// Keys and values read so far, against [`DecodeOptions::max_tokens`].
    tokens: usize,
}

impl<'a, 'o> Cursor<'a, 'o> {
    pub fn new(input: &'a [u8], opts: &'o DecodeOptions) -> Self {
        Self {
            input,
            pos: 0,
            opts,
            bad: None,
            tokens: 0,
        }
    }

    /// Records the error and returns the marker.
    #[cold]
    #[inline(never)]
    pub fn fail(&mut self, kind: ErrorKind, offset: usize) -> Fail {
        self.bad = Some((kind, offset));
        Fail
    }

    /// The recorded error, or an end-of-input error if none was recorded (which
    /// cannot happen: every `Fail` comes from [`Cursor::fail`]).
    pub fn take_bad(&mut self) -> (ErrorKind, usize) {
        self.bad
            .take()
            .unwrap_or((ErrorKind::UnexpectedEof, self.pos))
    }

    #[inline]
    pub fn peek(&mut self) -> Step<u8> {
        match self.input.get(self.pos) {
            Some(&c) => Ok(c),
            None => Err(self.fail(ErrorKind::UnexpectedEof, self.pos)),
        }
    }

    /// Counts one key or value starting at the current position.
    #[inline]
    pub fn count_token(&mut self) -> Step<()> {
        self.tokens += 1;
        if self.tokens > self.opts.max_tokens {
            let limit = self.opts.max_tokens;
            return Err(self.fail(ErrorKind::TooManyTokens { limit }, self.pos));
        }
        Ok(())
    }

    /// Fails with [`ErrorKind::DepthExceeded`] if a container at `depth` (the number
    /// of containers around it) would be too deep.
    #[inline]
    pub fn check_depth(&mut self, depth: usize) -> Step<()> {
        if depth >= self.opts.max_depth {
            let limit = self.opts.max_depth;
            return Err(self.fail(ErrorKind::DepthExceeded { limit }, self.pos));
        }
        Ok(())
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

    /// Reads an integer (`i...e`) at the current position, which holds the `i`.
    pub fn int(&mut self) -> Step<i64> {
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

    /// Reads a byte string (`<len>:<bytes>`) at the current position and returns
    /// the range of its bytes in the input.
    pub fn bytes(&mut self) -> Step<Range<usize>> {
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
        let begin = self.pos;
        match begin.checked_add(len) {
            Some(end) if end <= self.input.len() => {
                self.pos = end;
                Ok(begin..end)
            }
            _ => Err(self.fail(ErrorKind::UnexpectedEof, self.input.len())),
        }
    }

    /// The bytes of a range returned by [`Cursor::bytes`].
    #[inline]
    pub fn slice(&self, range: Range<usize>) -> &'a [u8] {
        self.input.get(range).unwrap_or_default()
    }
}

/// The offset of the first key (in input order) that repeats an earlier one, given
/// every key of one dictionary with its offset; `None` if all keys differ.
pub(crate) fn first_repeat<'k>(keys: impl Iterator<Item = (&'k [u8], usize)>) -> Option<usize> {
    let mut keys: Vec<(&[u8], usize)> = keys.collect();
    keys.sort_unstable();
    keys.windows(2)
        .filter(|w| w[0].0 == w[1].0) // ok: windows(2) are two long
        .map(|w| w[1].1) // ok: windows(2) are two long
        .min()
}
