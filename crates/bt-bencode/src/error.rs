//! Decoding and serde errors, with the byte offset and dictionary-key path.

use std::fmt;

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside a value.
    UnexpectedEof,
    /// A byte that starts no bencode value.
    InvalidTypeByte(u8),
    /// A digit was required.
    ExpectedDigit,
    /// A `:` was required after a string length.
    ExpectedColon,
    /// An `e` was required to end an integer.
    ExpectedEnd,
    /// A dictionary key that is not a byte string.
    DictKeyNotString,
    /// A dictionary key with no value before the closing `e`.
    DictMissingValue,
    /// An integer outside the range of `i64`.
    IntOverflow,
    /// Strict mode: an integer with a leading zero.
    IntLeadingZero,
    /// Strict mode: `i-0e`.
    IntNegativeZero,
    /// Strict mode: a string length with a leading zero.
    StringLengthLeadingZero,
    /// Strict mode: dictionary keys out of order.
    DictUnsortedKeys,
    /// Strict mode: the same key twice in one dictionary.
    DictDuplicateKey,
    /// Strict mode: bytes after the value.
    TrailingData,
    /// Lists and dictionaries nested deeper than the limit.
    DepthExceeded {
        /// The limit in force.
        limit: usize,
    },
    /// The whole input is longer than the limit.
    InputTooLong {
        /// The input's length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More keys and values than the limit.
    TooManyTokens {
        /// The limit in force.
        limit: usize,
    },
    /// A byte string longer than the limit.
    StringTooLong {
        /// The declared length.
        len: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A typed (serde) decode found something other than what the type wants.
    Custom(String),
    /// [`crate::to_bytes`] / [`crate::to_value`]: a value bencode cannot
    /// represent (a float, `()`, `None` in a list, a non-string map key...).
    Serialize(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnexpectedEof => write!(f, "unexpected end of input"),
            ErrorKind::InvalidTypeByte(b) => {
                write!(
                    f,
                    "invalid byte {:?} where a value should start",
                    *b as char
                )
            }
            ErrorKind::ExpectedDigit => write!(f, "expected a digit"),
            ErrorKind::ExpectedColon => write!(f, "expected ':' after string length"),
            ErrorKind::ExpectedEnd => write!(f, "expected 'e' to end integer"),
            ErrorKind::DictKeyNotString => write!(f, "dictionary key is not a byte string"),
            ErrorKind::DictMissingValue => write!(f, "dictionary key has no value"),
            ErrorKind::IntOverflow => write!(f, "integer does not fit in 64 bits"),
            ErrorKind::IntLeadingZero => write!(f, "integer has a leading zero"),
            ErrorKind::IntNegativeZero => write!(f, "negative zero"),
            ErrorKind::StringLengthLeadingZero => write!(f, "string length has a leading zero"),
            ErrorKind::DictUnsortedKeys => write!(f, "dictionary keys not sorted"),
            ErrorKind::DictDuplicateKey => write!(f, "duplicate dictionary key"),
            ErrorKind::TrailingData => write!(f, "trailing data after value"),
            ErrorKind::DepthExceeded { limit } => {
                write!(f, "nesting deeper than {limit} (max_depth)")
            }
            ErrorKind::InputTooLong { len, limit } => {
                write!(
                    f,
                    "input of {len} bytes exceeds limit of {limit} (max_input_len)"
                )
            }
            ErrorKind::TooManyTokens { limit } => {
                write!(f, "more than {limit} tokens (max_tokens)")
            }
            ErrorKind::StringTooLong { len, limit } => {
                write!(
                    f,
                    "string of {len} bytes exceeds limit of {limit} (max_string_len)"
                )
            }
            ErrorKind::Custom(msg) | ErrorKind::Serialize(msg) => f.write_str(msg),
        }
    }
}

/// A bencode error: what, at which byte offset, under which dictionary keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset in the input where it was found (0 for [`ErrorKind::Serialize`],
    /// which has no input).
    pub offset: usize,
    /// Dictionary keys and list indices from the root, like `info.files[3].length`
    /// (empty at the root).
    pub path: String,
}

impl Error {
    /// An error of `kind` at `offset` under `path`.
    pub fn new(kind: ErrorKind, offset: usize, path: String) -> Self {
        Self { kind, offset, path }
    }

    /// Puts `key` in front of the path (the error happened inside its value).
    pub(crate) fn under_key(mut self, key: &[u8]) -> Self {
        let mut path = String::new();
        push_key(&mut path, key);
        self.path = join(path, self.path);
        self
    }

    /// Puts list index `index` in front of the path.
    pub(crate) fn under_index(mut self, index: usize) -> Self {
        let mut path = String::new();
        push_index(&mut path, index);
        self.path = join(path, self.path);
        self
    }
}

/// Joins a path prefix and the rest of the path (`files` + `[3].length`).
fn join(mut head: String, tail: String) -> String {
    if !tail.is_empty() && !tail.starts_with('[') {
        head.push('.');
    }
    head.push_str(&tail);
    head
}

/// Appends a dictionary key to a rendered path (`info` + `files`: `info.files`).
pub(crate) fn push_key(path: &mut String, key: &[u8]) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(&String::from_utf8_lossy(key));
}

/// Appends a list index to a rendered path (`files` + 3: `files[3]`).
pub(crate) fn push_index(path: &mut String, index: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{index}]"); // writing to a String cannot fail
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Serialize(_) = self.kind {
            write!(f, "{}", self.kind)?;
        } else {
            write!(f, "{} at byte {}", self.kind, self.offset)?;
        }
        if !self.path.is_empty() {
            write!(f, " (in {})", self.path)?;
        }
        Ok(())
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
