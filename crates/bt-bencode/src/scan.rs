//! The validating scanner: checks one value against [`DecodeOptions`] without
//! building anything, for [`DecodeOptions::decode_ref`].
//!
//! It accepts exactly what the tree decoder accepts and reports the same error
//! (kind, offset and key path) for what it refuses; its memory is one small frame per
//! level of nesting, whatever the input holds (bounded by `max_depth`). It loops
//! instead of recursing, so no setting of `max_depth` can exhaust the stack.

use std::ops::Range;

use crate::cursor::{first_repeat, Cursor, Fail, Step};
use crate::decode::DecodeOptions;
use crate::error::{push_index, push_key, Error, ErrorKind};

/// One open list or dictionary.
struct Frame {
    /// Offset of its `l` or `d`.
    start: usize,
    dict: bool,
    /// Between the start of an item (a list item, a dictionary value) and its end:
    /// the item is part of the path of an error found there.
    in_item: bool,
    /// Items (entries) completed so far.
    count: usize,
    /// A dictionary's last key (the current one while `in_item`).
    key: Range<usize>,
    /// A dictionary whose keys were not strictly increasing: checked for a repeat
    /// when it closes (lenient mode with `reject_duplicate_keys`).
    unsorted: bool,
}

struct Scanner<'a, 'o> {
    cur: Cursor<'a, 'o>,
    stack: Vec<Frame>,
}

/// Checks the value at the start of `input`; returns where it ends.
pub(crate) fn scan(opts: &DecodeOptions, input: &[u8]) -> Result<usize, Error> {
    opts.check_input_len(input)?;
    let mut s = Scanner {
        cur: Cursor::new(input, opts),
        stack: Vec::new(),
    };
    match s.run() {
        Ok(()) => Ok(s.cur.pos),
        Err(Fail) => Err(s.error()),
    }
}

impl Scanner<'_, '_> {
    /// The recorded error with the path of the frames as they were when it happened.
    fn error(&mut self) -> Error {
        let (kind, offset) = self.cur.take_bad();
        let mut path = String::new();
        for f in self.stack.iter().filter(|f| f.in_item) {
            if f.dict {
                push_key(&mut path, self.cur.slice(f.key.clone()));
            } else {
                push_index(&mut path, f.count);
            }
        }
        Error::new(kind, offset, path)
    }

    fn run(&mut self) -> Step<()> {
        loop {
            if let Some(top) = self.stack.last() {
                let dict = top.dict;
                if self.cur.peek()? == b'e' {
                    self.close()?;
                    if self.stack.is_empty() {
                        return Ok(());
                    }
                    continue;
                }
                if dict {
                    self.key()?;
                } else if let Some(top) = self.stack.last_mut() {
                    top.in_item = true;
                }
            }
            // A value starts here.
            let c = self.cur.peek()?;
            self.cur.count_token()?;
            match c {
                b'i' => {
                    self.cur.int()?;
                }
                b'0'..=b'9' => {
                    self.cur.bytes()?;
                }
                b'l' | b'd' => {
                    self.cur.check_depth(self.stack.len())?;
                    self.stack.push(Frame {
                        start: self.cur.pos,
                        dict: c == b'd',
                        in_item: false,
                        count: 0,
                        key: 0..0,
                        unsorted: false,
                    });
                    self.cur.pos += 1;
                    continue;
                }
                other => {
                    return Err(self
                        .cur
                        .fail(ErrorKind::InvalidTypeByte(other), self.cur.pos))
                }
            }
            if self.stack.is_empty() {
                return Ok(());
            }
            self.item_done();
        }
    }

    /// Reads a dictionary key (the position is not at the dictionary's `e`).
    fn key(&mut self) -> Step<()> {
        let c = self.cur.peek()?;
        if !c.is_ascii_digit() {
            return Err(self.cur.fail(ErrorKind::DictKeyNotString, self.cur.pos));
        }
        let key_at = self.cur.pos;
        self.cur.count_token()?;
        let key = self.cur.bytes()?;
        let Some(top) = self.stack.last() else {
            return Ok(()); // ok: only called with a dictionary open
        };
        if top.count > 0 {
            let order = self
                .cur
                .slice(top.key.clone())
                .cmp(self.cur.slice(key.clone()));
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
            if !order.is_lt() {
                if let Some(top) = self.stack.last_mut() {
                    top.unsorted = true;
                }
            }
        }
        if let Some(top) = self.stack.last_mut() {
            top.key = key;
        }
        if self.cur.peek()? == b'e' {
            return Err(self.cur.fail(ErrorKind::DictMissingValue, self.cur.pos));
        }
        if let Some(top) = self.stack.last_mut() {
            top.in_item = true;
        }
        Ok(())
    }

    /// The item of the innermost container is complete.
    fn item_done(&mut self) {
        if let Some(top) = self.stack.last_mut() {
            top.in_item = false;
            top.count += 1;
        }
    }

    /// Closes the innermost container (the position holds its `e`).
    fn close(&mut self) -> Step<()> {
        let Some(top) = self.stack.last() else {
            return Ok(()); // ok: only called with a container open
        };
        if top.unsorted && self.cur.opts.reject_duplicate_keys {
            if let Some(at) = first_repeat(dict_keys(self.cur.input, top.start)) {
                return Err(self.cur.fail(ErrorKind::DictDuplicateKey, at));
            }
        }
        self.cur.pos += 1;
        self.stack.pop();
        self.item_done();
        Ok(())
    }
}

/// The keys (with their offsets) of the dictionary at `start`, which the scanner has
/// read whole. Stops early rather than fail on anything unexpected.
fn dict_keys(input: &[u8], start: usize) -> impl Iterator<Item = (&[u8], usize)> {
    let mut pos = start + 1;
    std::iter::from_fn(move || {
        if input.get(pos) == Some(&b'e') {
            return None;
        }
        let at = pos;
        let (key, after) = crate::view::read_bytes(input, pos)?;
        pos = crate::view::skip(input, after)?;
        Some((key, at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    /// The scanner and the tree decoder agree on `input` under `opts`.
    fn agree(input: &[u8], opts: &DecodeOptions) {
        let tree = opts.decode_prefix(input).map(|(_, end)| end);
        let scanned = scan(opts, input);
        assert_eq!(tree, scanned, "input {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn agrees_with_the_tree_decoder() {
        let lenient = DecodeOptions::default();
        let strict = DecodeOptions::strict();
        let dups = DecodeOptions {
            reject_duplicate_keys: true,
            ..DecodeOptions::default()
        };
        let few = DecodeOptions {
            max_tokens: 3,
            max_depth: 2,
            ..DecodeOptions::default()
        };
        for input in [
            &b""[..],
            b"i42e",
            b"i-0e",
            b"i042e",
            b"i",
            b"ie",
            b"4:spam",
            b"04:spam",
            b"4:spa",
            b"le",
            b"l",
            b"li1ei2ee",
            b"li1e",
            b"lxe",
            b"d1:ai1ee",
            b"d1:ai1e1:ai2ee",
            b"d1:bi1e1:ai2ee",
            b"d1:bi1e1:ai2e1:bi3ee",
            b"di1ei2ee",
            b"d1:ae",
            b"d1:a",
            b"d1:ad1:bl1:cd1:x1:y1:x1:zeeee",
            b"llleee",
            b"lllleeee",
            b"d4:infod5:filesld6:lengthi-1e4:pathl1:aeeeee",
            b"d4:infod5:filesl d1:xi1eeee",
            b"l99999999999999999999999:xe",
            b"i99999999999999999999e",
            b"i1ei2e",
        ] {
            for opts in [&lenient, &strict, &dups, &few] {
                agree(input, opts);
            }
        }
        assert!(decode(b"d1:ai1e1:ai2ee").is_ok());
        let e = scan(&dups, b"ld1:ai1e1:bi2e1:ai3eee").unwrap_err();
        assert_eq!(
            (e.kind, e.offset, e.path.as_str()),
            (ErrorKind::DictDuplicateKey, 14, "[0]")
        );
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let deep = [vec![b'l'; 1_000_000], vec![b'e'; 1_000_000]].concat();
        let opts = DecodeOptions {
            max_depth: usize::MAX,
            max_tokens: usize::MAX,
            ..DecodeOptions::default()
        };
        assert_eq!(scan(&opts, &deep), Ok(deep.len()));
    }
}
