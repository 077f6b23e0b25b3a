//! Typed access to checked bencode (borrowed [`ValueRef`] views) that can name, for
//! every value, its key path (`info.files[3].length`) and byte offset, so that every
//! error says where.
//!
//! The key path is worked out only when an error is made (by walking from the root
//! to the value's offset), so reading a million files builds no strings. Code that
//! only probes (is this a list of strings?) uses the `Option`-returning readers and
//! makes no error.

use bt_bencode::{PathStep, ValueRef};

use crate::error::{Error, Result};

/// The document being read: its root, to name any value in an error.
pub(crate) struct Doc<'a> {
    root: ValueRef<'a>,
    /// How the root itself is named (`torrent`); values below it are named from
    /// their first key (`info.files`).
    root_name: &'static str,
}

/// A value of the document.
#[derive(Clone, Copy)]
pub(crate) struct Node<'d, 'a> {
    pub value: ValueRef<'a>,
    doc: &'d Doc<'a>,
}

/// A dictionary value of the document.
#[derive(Clone, Copy)]
pub(crate) struct DictNode<'d, 'a> {
    pub node: Node<'d, 'a>,
}

/// A key as it appears in a key path: as text when it is printable UTF-8, `""` when
/// empty (the file entry of a BEP 52 file tree), else `0x` and hex (a pieces root).
pub(crate) fn key_name(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok("") => "\"\"".to_string(),
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => format!("0x{}", hex::encode(key)),
    }
}

/// Appends `key` to a key path.
fn push_key(path: &mut String, key: &[u8]) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(&key_name(key));
}

impl<'a> Doc<'a> {
    pub fn new(root: ValueRef<'a>, root_name: &'static str) -> Self {
        Doc { root, root_name }
    }

    pub fn root(&self) -> Node<'_, 'a> {
        Node {
            value: self.root,
            doc: self,
        }
    }

    /// A node for a value of this document found some other way (by offset).
    pub fn node(&self, value: ValueRef<'a>) -> Node<'_, 'a> {
        Node { value, doc: self }
    }

    /// The key path of the value at `offset`, `""` for the root.
    fn path_of(&self, offset: usize) -> String {
        let mut path = String::new();
        for step in self.root.path_to(offset) {
            match step {
                PathStep::Key(k) => push_key(&mut path, k),
                PathStep::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        path
    }
}

impl<'d, 'a> Node<'d, 'a> {
    /// The byte offset of the value.
    pub fn offset(&self) -> usize {
        self.value.offset()
    }

    /// The key path of the value (`torrent` for the root). Walks the document: for
    /// errors only.
    pub fn key(&self) -> String {
        let path = self.doc.path_of(self.offset());
        if path.is_empty() {
            self.doc.root_name.to_string()
        } else {
            path
        }
    }

    /// The key path of `key` inside this value (a dictionary).
    fn child_key(&self, key: &[u8]) -> String {
        let mut path = self.doc.path_of(self.offset());
        push_key(&mut path, key);
        path
    }

    fn wrong_type(&self, expected: &'static str) -> Error {
        Error::WrongType {
            key: self.key(),
            expected,
            found: self.value.type_name(),
            offset: self.offset(),
        }
    }

    pub fn dict(&self) -> Result<DictNode<'d, 'a>> {
        match self.value.as_dict() {
            Some(_) => Ok(DictNode { node: *self }),
            None => Err(self.wrong_type("a dictionary")),
        }
    }

    pub fn int(&self) -> Result<i64> {
        self.value
            .as_int()
            .ok_or_else(|| self.wrong_type("an integer"))
    }

    pub fn bytes(&self) -> Result<&'a [u8]> {
        self.value
            .as_bytes()
            .ok_or_else(|| self.wrong_type("a byte string"))
    }

    /// A length: a non-negative integer.
    pub fn length(&self) -> Result<u64> {
        let v = self.int()?;
        u64::try_from(v).map_err(|_| Error::NegativeLength {
            key: self.key(),
            value: v,
            offset: self.offset(),
        })
    }

    /// The items of a list.
    pub fn list(&self) -> Result<impl Iterator<Item = Node<'d, 'a>> + 'd> {
        let list = self
            .value
            .as_list()
            .ok_or_else(|| self.wrong_type("a list"))?;
        let doc = self.doc;
        Ok(list.iter().map(move |value| Node { value, doc }))
    }

    /// Checks that this is a list of byte strings; returns how many there are.
    pub fn byte_list(&self) -> Result<usize> {
        let mut count = 0;
        for item in self.list()? {
            item.bytes()?;
            count += 1;
        }
        Ok(count)
    }

    /// Checks that this is a list of byte strings; returns how many there are and the
    /// last one, in one walk.
    pub fn byte_list_last(&self) -> Result<(usize, Option<&'a [u8]>)> {
        let (mut count, mut last) = (0, None);
        for item in self.list()? {
            last = Some(item.bytes()?);
            count += 1;
        }
        Ok((count, last))
    }

    /// Whether this is a list of byte strings (no error made).
    pub fn is_byte_list(&self) -> bool {
        self.value
            .as_list()
            .is_some_and(|l| l.iter().all(|v| v.as_bytes().is_some()))
    }
}

impl<'d, 'a> DictNode<'d, 'a> {
    pub fn offset(&self) -> usize {
        self.node.offset()
    }

    /// The key path of the dictionary.
    pub fn key(&self) -> String {
        self.node.key()
    }

    /// The values under each of `keys` (the first of each, if repeated), in one walk
    /// over the entries.
    pub fn fields<const N: usize>(&self, keys: [&str; N]) -> [Option<Node<'d, 'a>>; N] {
        let mut out = [None; N];
        if let Some(dict) = self.node.value.as_dict() {
            for e in dict.iter() {
                if let Some(i) = keys.iter().position(|k| k.as_bytes() == e.key) {
                    if let Some(slot) = out.get_mut(i) {
                        if slot.is_none() {
                            *slot = Some(self.node.doc.node(e.value));
                        }
                    }
                }
            }
        }
        out
    }

    /// The error for `key` missing from this dictionary.
    pub fn missing(&self, key: &str) -> Error {
        Error::MissingKey {
            key: self.node.child_key(key.as_bytes()),
            offset: self.offset(),
        }
    }

    /// Every entry, in input order: the key, where the key starts, the value.
    pub fn entries(&self) -> impl Iterator<Item = (&'a [u8], usize, Node<'d, 'a>)> + 'd {
        let doc = self.node.doc;
        self.node
            .value
            .as_dict()
            .into_iter()
            .flat_map(|d| d.iter())
            .map(move |e| (e.key, e.key_offset, doc.node(e.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_bencode::DecodeOptions;

    #[test]
    fn offsets_and_paths() {
        let input = b"d4:infod5:filesld6:lengthi5eed6:lengthi-3eeeee";
        let v = DecodeOptions::default().decode_ref(input).unwrap();
        let doc = Doc::new(v, "torrent");
        let root = doc.root().dict().unwrap();
        let [info] = root.fields(["info"]);
        let info = info.unwrap().dict().unwrap();
        assert_eq!(info.offset(), 7);
        let [files] = info.fields(["files"]);
        let files: Vec<_> = files.unwrap().list().unwrap().collect();
        assert_eq!(files[1].offset(), 29);
        let f1 = files[1].dict().unwrap();
        let [len, path] = f1.fields(["length", "path"]);
        let len = len.unwrap();
        assert_eq!(len.key(), "info.files[1].length");
        match len.length() {
            Err(Error::NegativeLength { key, value, offset }) => {
                assert_eq!(
                    (key.as_str(), value, offset),
                    ("info.files[1].length", -3, 38)
                );
                assert_eq!(&input[offset..offset + 4], b"i-3e");
            }
            other => panic!("{other:?}"),
        }
        assert!(path.is_none());
        match f1.missing("path") {
            Error::MissingKey { key, offset } => {
                assert_eq!((key.as_str(), offset), ("info.files[1].path", 29))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(doc.root().key(), "torrent");
        let [files_node, nothing] = info.fields(["files", "nothing"]);
        assert!(files_node.is_some() && nothing.is_none());
    }
}
