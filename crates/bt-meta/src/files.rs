//! A torrent's files: the compact file table that [`Info`] keeps, the borrowed views
//! [`Files`] and [`FileEntry`] that read it, and the parsers of v1 `files` and the v2
//! `file tree` that fill it.
//!
//! The table holds no strings. Per file it keeps a 32-bit offset into the `info` bytes
//! where the file's path is written (a v1 `path` list, or the key of a v2 file-tree
//! entry plus the index of its directory), a byte of flags, and for v2 torrents the
//! offset of the file's pieces root; lengths and offsets come from the [`Geometry`].
//! A v2 directory is one entry (its key's offset and its parent), shared by the files
//! under it. Paths are sanitized when they are read, without a copy when already
//! clean; the duplicates renamed at load time keep their new last element in one
//! string. So a file costs about 5 bytes (v1) or 13 bytes (v2) here, plus 16 in the
//! geometry, whatever its path.
//!
//! [`Geometry`]: crate::Geometry

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use bt_bencode::ValueRef;

use crate::error::{Error, Result};
use crate::geometry::BLOCK_LEN;
use crate::metainfo::{FileAttr, Info};
use crate::path::{join_under, sanitize_component_cow};
use crate::walk::{DictNode, Doc, Node};

/// No offset (a synthesized path, no pieces root) / no directory (the top level).
pub(crate) const NONE: u32 = u32::MAX;

/// Prefix of BitComet-style pad files that carry no `attr`.
const LEGACY_PAD_PREFIX: &[u8] = b"_____padding_file_";

/// Largest v2 file: fewer than `i32::MAX / 2` blocks (libtorrent's limit).
const MAX_V2_FILE_BLOCKS: u64 = (i32::MAX / 2) as u64;

/// Flag bits of a file.
mod flag {
    /// A pad file: `attr` `p`, a legacy `_____padding_file_` name, or synthesized.
    pub const PAD: u8 = 1;
    /// `attr` `p`.
    pub const ATTR_PAD: u8 = 2;
    /// `attr` `x`.
    pub const EXECUTABLE: u8 = 4;
    /// `attr` `h`.
    pub const HIDDEN: u8 = 8;
    /// `attr` `l`.
    pub const SYMLINK: u8 = 16;
    /// No path in the torrent: the path is `.pad/<length>`.
    pub const SYNTHESIZED: u8 = 32;
}

fn attr_flags(attr: FileAttr) -> u8 {
    let mut f = 0;
    for (on, bit) in [
        (attr.pad, flag::ATTR_PAD),
        (attr.executable, flag::EXECUTABLE),
        (attr.hidden, flag::HIDDEN),
        (attr.symlink, flag::SYMLINK),
    ] {
        if on {
            f |= bit;
        }
    }
    f
}

/// The files of a torrent, compactly; see the module docs. Offsets are into the
/// `info` bytes ([`Info`] keeps them).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct FileTable {
    /// Per file: where its path is written: a v1 `path` list, the key of a v2 file-tree
    /// entry, or [`NONE`] (a single-file torrent's file, or a synthesized pad file).
    path_at: Vec<u32>,
    /// Per file (v2-only torrents; empty otherwise): its directory in `dirs`, or
    /// [`NONE`] at the top level.
    dir: Vec<u32>,
    /// Per file (torrents with v2 metadata; empty otherwise): where its pieces root
    /// (a 32-byte string) is written, or [`NONE`].
    root_at: Vec<u32>,
    /// Per file: [`flag`] bits.
    flags: Vec<u8>,
    /// v2 directories: where the key is written, and the parent (or [`NONE`]).
    dirs: Vec<(u32, u32)>,
    /// Symlinks with a target: (file, where its `symlink path` list is written), by file.
    symlinks: Vec<(u32, u32)>,
    /// Renamed duplicates: (file, end of its new last element in `renamed`), by file.
    renames: Vec<(u32, u32)>,
    /// The new last elements of renamed duplicates, one after the other.
    renamed: String,
}

impl FileTable {
    /// Number of files.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    fn flags(&self, i: usize) -> u8 {
        self.flags.get(i).copied().unwrap_or(0)
    }

    /// Whether file `i` is a pad file.
    pub fn is_pad(&self, i: usize) -> bool {
        self.flags(i) & flag::PAD != 0
    }

    /// The new last element of file `i`, if it was renamed.
    fn renamed(&self, i: usize) -> Option<&str> {
        let at = self
            .renames
            .binary_search_by_key(&(i as u32), |r| r.0)
            .ok()?;
        let start = match at.checked_sub(1) {
            Some(prev) => self.renames.get(prev)?.1,
            None => 0,
        };
        let end = self.renames.get(at)?.1;
        self.renamed.get(start as usize..end as usize)
    }

    /// Records that file `i` is now called `name` (files in increasing order).
    pub fn rename(&mut self, i: usize, name: &str) {
        self.renamed.push_str(name);
        self.renames.push((i as u32, self.renamed.len() as u32));
    }

    /// The path elements of file `i` as written in the torrent, below the torrent's
    /// folder (for a single-file torrent: none), appended to `out`. `len` is the file's
    /// length (a synthesized pad file is named for it).
    pub fn raw_elements<'r>(
        &self,
        raw: &'r [u8],
        i: usize,
        len: u64,
        out: &mut Vec<Cow<'r, [u8]>>,
    ) {
        let at = self.path_at.get(i).copied().unwrap_or(NONE);
        if self.flags(i) & flag::SYNTHESIZED != 0 {
            out.push(Cow::Borrowed(b".pad"));
            out.push(Cow::Owned(len.to_string().into_bytes()));
        } else if at == NONE {
            // A single-file torrent: the file is the torrent.
        } else if let Some(&dir) = self.dir.get(i) {
            let first = out.len();
            out.extend(key_at(raw, at).map(Cow::Borrowed));
            let mut dir = dir;
            // Parents come before their children in `dirs`: the walk ends.
            while let Some(&(key, parent)) = self.dirs.get(dir as usize) {
                out.extend(key_at(raw, key).map(Cow::Borrowed));
                if parent >= dir {
                    break;
                }
                dir = parent;
            }
            out.get_mut(first..).unwrap_or_default().reverse();
        } else {
            out.extend(list_at(raw, at).map(Cow::Borrowed));
        }
    }

    /// Calls `f` with each path element of file `i` as written (see
    /// [`FileTable::raw_elements`]), without collecting them when it can.
    pub fn for_each_raw_element(&self, raw: &[u8], i: usize, len: u64, mut f: impl FnMut(&[u8])) {
        let at = self.path_at.get(i).copied().unwrap_or(NONE);
        if self.flags(i) & flag::SYNTHESIZED == 0 && at != NONE && self.dir.get(i).is_none() {
            list_at(raw, at).for_each(f);
        } else {
            let mut out = Vec::new();
            self.raw_elements(raw, i, len, &mut out);
            out.iter().for_each(|e| f(e));
        }
    }

    /// The `symlink path` of file `i` as written, if it has one.
    fn symlink_elements<'r>(
        &self,
        raw: &'r [u8],
        i: usize,
    ) -> Option<impl Iterator<Item = &'r [u8]>> {
        let at = self
            .symlinks
            .binary_search_by_key(&(i as u32), |s| s.0)
            .ok()?;
        let list = self.symlinks.get(at)?.1;
        Some(list_at(raw, list))
    }

    /// The pieces root of file `i`.
    pub fn pieces_root_of(&self, raw: &[u8], i: usize) -> Option<[u8; 32]> {
        let at = *self.root_at.get(i)?;
        if at == NONE {
            return None;
        }
        ValueRef::at(raw, at as usize)?.as_bytes()?.try_into().ok()
    }

    fn attr(&self, i: usize) -> FileAttr {
        let f = self.flags(i);
        FileAttr {
            pad: f & flag::ATTR_PAD != 0,
            executable: f & flag::EXECUTABLE != 0,
            hidden: f & flag::HIDDEN != 0,
            symlink: f & flag::SYMLINK != 0,
        }
    }

    /// Heap bytes held (for the cost report of `cargo xtask bench parse`).
    pub fn heap_len(&self) -> usize {
        self.path_at.capacity() * 4
            + self.dir.capacity() * 4
            + self.root_at.capacity() * 4
            + self.flags.capacity()
            + self.dirs.capacity() * 8
            + self.symlinks.capacity() * 8
            + self.renames.capacity() * 8
            + self.renamed.capacity()
    }

    fn shrink_to_fit(&mut self) {
        self.path_at.shrink_to_fit();
        self.dir.shrink_to_fit();
        self.root_at.shrink_to_fit();
        self.flags.shrink_to_fit();
        self.dirs.shrink_to_fit();
        self.symlinks.shrink_to_fit();
        self.renames.shrink_to_fit();
        self.renamed.shrink_to_fit();
    }
}

impl fmt::Debug for FileTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileTable")
            .field("files", &self.len())
            .field("dirs", &self.dirs.len())
            .field("renamed", &self.renames.len())
            .finish()
    }
}

/// The byte string at `at` of checked input.
fn key_at(raw: &[u8], at: u32) -> Option<&[u8]> {
    ValueRef::at(raw, at as usize)?.as_bytes()
}

/// The byte strings of the list at `at` of checked input.
fn list_at(raw: &[u8], at: u32) -> impl Iterator<Item = &[u8]> {
    ValueRef::at(raw, at as usize)
        .and_then(|v| v.as_list())
        .into_iter()
        .flat_map(|l| l.iter())
        .filter_map(|v| v.as_bytes())
}

/// The files of a torrent in byte-stream order, pad files included: a view of
/// [`Info`]. See [`Info::files`].
#[derive(Clone, Copy)]
pub struct Files<'a> {
    info: &'a Info,
}

impl<'a> Files<'a> {
    pub(crate) fn new(info: &'a Info) -> Self {
        Files { info }
    }

    /// Number of files, pad files included.
    pub fn len(&self) -> usize {
        self.info.files_table().len()
    }

    /// Whether there is no file (never, for a loaded torrent).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// File `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<FileEntry<'a>> {
        (index < self.len()).then_some(FileEntry {
            info: self.info,
            index,
        })
    }

    /// The files in order.
    pub fn iter(&self) -> FilesIter<'a> {
        FilesIter {
            info: self.info,
            range: 0..self.len(),
        }
    }
}

impl<'a> IntoIterator for Files<'a> {
    type Item = FileEntry<'a>;
    type IntoIter = FilesIter<'a>;

    fn into_iter(self) -> FilesIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Files<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Files`].
#[derive(Clone, Debug)]
pub struct FilesIter<'a> {
    info: &'a Info,
    range: std::ops::Range<usize>,
}

impl<'a> Iterator for FilesIter<'a> {
    type Item = FileEntry<'a>;

    fn next(&mut self) -> Option<FileEntry<'a>> {
        let index = self.range.next()?;
        Some(FileEntry {
            info: self.info,
            index,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl DoubleEndedIterator for FilesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let index = self.range.next_back()?;
        Some(FileEntry {
            info: self.info,
            index,
        })
    }
}

impl ExactSizeIterator for FilesIter<'_> {}

/// One file of a torrent, in the order of the torrent's byte stream: a view of
/// [`Info`] (nothing is copied until asked for).
#[derive(Clone, Copy)]
pub struct FileEntry<'a> {
    info: &'a Info,
    index: usize,
}

impl<'a> FileEntry<'a> {
    /// The file's index in the torrent's file list.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Length in bytes (0 for a symlink, whatever the torrent says).
    pub fn length(&self) -> u64 {
        // ok: a FileEntry exists only for a file of the geometry
        self.info.geometry().file_len(self.index).unwrap_or(0)
    }

    /// Offset of the file's first byte in the torrent's byte stream.
    pub fn offset(&self) -> u64 {
        // ok: a FileEntry exists only for a file of the geometry
        self.info.geometry().file_offset(self.index).unwrap_or(0)
    }

    /// BEP 47 attributes.
    pub fn attr(&self) -> FileAttr {
        self.info.files_table().attr(self.index)
    }

    /// A pad file: `attr` `p`, a legacy `_____padding_file_` name, or one synthesized
    /// for a v2-only torrent. Pad files hold zeros and are never written to disk.
    pub fn is_pad(&self) -> bool {
        self.info.files_table().is_pad(self.index)
    }

    /// Sanitized path elements relative to the download folder, the torrent's folder
    /// name first for a multi-file torrent (see [`crate::path`]). Duplicates (compared
    /// case-insensitively) are renamed `name.1.ext`, like libtorrent does.
    pub fn path(&self) -> Vec<Cow<'a, str>> {
        let info = self.info;
        let name = Cow::Borrowed(info.name.as_str());
        if info.single_file {
            return vec![name];
        }
        let mut raw = Vec::new();
        info.files_table()
            .raw_elements(info.raw_info(), self.index, self.length(), &mut raw);
        let mut out = Vec::with_capacity(raw.len() + 1);
        out.push(name);
        out.extend(raw.into_iter().map(|e| match e {
            Cow::Borrowed(b) => sanitize_component_cow(b),
            Cow::Owned(b) => Cow::Owned(sanitize_component_cow(&b).into_owned()),
        }));
        if let Some(new) = info.files_table().renamed(self.index) {
            if let Some(last) = out.last_mut() {
                *last = Cow::Borrowed(new);
            }
        }
        out
    }

    /// The path elements exactly as the torrent has them, one for one with
    /// [`FileEntry::path`] (the raw name first for a multi-file torrent).
    pub fn raw_path(&self) -> Vec<Cow<'a, [u8]>> {
        let info = self.info;
        let name = Cow::Borrowed(info.raw_name.as_slice());
        if info.single_file {
            return vec![name];
        }
        let mut out = vec![name];
        info.files_table()
            .raw_elements(info.raw_info(), self.index, self.length(), &mut out);
        out
    }

    /// For a symlink: its sanitized target relative to the download folder.
    pub fn symlink_target(&self) -> Option<Vec<Cow<'a, str>>> {
        let info = self.info;
        let elements = info
            .files_table()
            .symlink_elements(info.raw_info(), self.index)?;
        let root = (!info.single_file).then_some(Cow::Borrowed(info.name.as_str()));
        Some(
            root.into_iter()
                .chain(elements.map(sanitize_component_cow))
                .collect(),
        )
    }

    /// The BEP 52 merkle root of the file's data (v2 and hybrid torrents).
    pub fn pieces_root(&self) -> Option<[u8; 32]> {
        self.info
            .files_table()
            .pieces_root_of(self.info.raw_info(), self.index)
    }

    /// Where this file goes under `base`: always inside `base`, whatever the torrent
    /// says (every element is a single normal path component).
    pub fn path_under(&self, base: &Path) -> PathBuf {
        join_under(base, &self.path())
    }

    /// The sanitized path joined with `/`, for display.
    pub fn display_path(&self) -> String {
        let info = self.info;
        let table = info.files_table();
        if info.single_file || table.renamed(self.index).is_some() {
            return self.path().join("/");
        }
        // The common case in one string, without the vectors of `path`.
        let mut out = String::with_capacity(info.name.len() + 32);
        out.push_str(&info.name);
        table.for_each_raw_element(info.raw_info(), self.index, self.length(), |e| {
            out.push('/');
            out.push_str(&sanitize_component_cow(e));
        });
        out
    }
}

impl fmt::Debug for FileEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileEntry")
            .field("index", &self.index)
            .field("path", &self.display_path())
            .field("length", &self.length())
            .field("pad", &self.is_pad())
            .finish()
    }
}

/// A file table being built, with the file lengths (for the geometry).
#[derive(Default)]
pub(crate) struct Built {
    pub table: FileTable,
    pub lens: Vec<u64>,
    pub single: bool,
}

impl Built {
    fn with_capacity(n: usize, v2: bool) -> Self {
        let mut b = Built::default();
        b.table.path_at.reserve_exact(n);
        b.table.flags.reserve_exact(n);
        b.lens.reserve_exact(n);
        if v2 {
            b.table.dir.reserve_exact(n);
            b.table.root_at.reserve_exact(n);
        }
        b
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    pub fn finish(mut self) -> (FileTable, Vec<u64>) {
        self.table.shrink_to_fit();
        (self.table, self.lens)
    }
}

/// Where the parsers are: the document, and where the `info` bytes start in it (the
/// table's offsets are relative to those bytes).
pub(crate) struct Source<'d, 'a> {
    pub doc: &'d Doc<'a>,
    pub info_start: usize,
    pub max_files: usize,
}

impl Source<'_, '_> {
    /// An offset of the input as an offset in the `info` bytes.
    fn rel(&self, offset: usize) -> u32 {
        // ok: callers check that the info bytes are shorter than u32::MAX, and every
        // offset here is inside them.
        u32::try_from(offset.saturating_sub(self.info_start)).unwrap_or(NONE)
    }

    fn too_many_files(&self, value: usize) -> Error {
        Error::LimitExceeded {
            limit: "max_files",
            what: "files",
            value: value as u64,
            max: self.max_files as u64,
        }
    }
}

fn parse_attr(node: Option<Node<'_, '_>>) -> Result<FileAttr> {
    match node {
        Some(n) => Ok(FileAttr::parse(n.bytes()?)),
        None => Ok(FileAttr::default()),
    }
}

/// `symlink path` when `attr` has `l` and the list is there: checked, and its offset.
fn parse_symlink(
    src: &Source<'_, '_>,
    node: Option<Node<'_, '_>>,
    attr: FileAttr,
) -> Result<Option<u32>> {
    match node {
        Some(n) if attr.symlink => {
            n.byte_list()?;
            Ok(Some(src.rel(n.offset())))
        }
        _ => Ok(None),
    }
}

/// v1 `files` (multi-file) or `length` (single file): the file table and lengths.
pub(crate) fn parse_v1(
    src: &Source<'_, '_>,
    info: &DictNode<'_, '_>,
    files: Option<Node<'_, '_>>,
    length: Option<Node<'_, '_>>,
    attr: Option<Node<'_, '_>>,
) -> Result<Built> {
    let Some(files_node) = files else {
        let len_node = length.ok_or_else(|| info.missing("length"))?;
        let len = len_node.length()?;
        let attr = parse_attr(attr)?;
        let mut b = Built::with_capacity(1, false);
        b.table.path_at.push(NONE);
        b.table.flags.push(attr_flags(attr));
        b.lens.push(len);
        b.single = true;
        return Ok(b);
    };
    let count = files_node.list()?.count();
    if count == 0 {
        return Err(Error::NoFiles {
            offset: files_node.offset(),
        });
    }
    if count > src.max_files {
        return Err(src.too_many_files(count));
    }
    let mut b = Built::with_capacity(count, false);
    for item in files_node.list()? {
        let d = item.dict()?;
        let [length, path, path_utf8, attr, symlink_path] =
            d.fields(["length", "path", "path.utf-8", "attr", "symlink path"]);
        let attr = parse_attr(attr)?;
        let symlink = parse_symlink(src, symlink_path, attr)?;
        let length = match (length, symlink) {
            (Some(n), _) => n.length()?,
            (None, Some(_)) => 0,
            (None, None) => return Err(d.missing("length")),
        };
        let path_node = match path_utf8 {
            Some(n) if n.is_byte_list() => Some(n),
            _ => path,
        };
        let mut flags = attr_flags(attr);
        let path_at = match path_node {
            Some(n) => {
                let (elements, last) = n.byte_list_last()?;
                if elements == 0 && !attr.pad {
                    return Err(Error::InvalidName {
                        key: n.key(),
                        offset: n.offset(),
                        reason: "empty path list",
                    });
                }
                if last.is_some_and(|l| l.starts_with(LEGACY_PAD_PREFIX)) {
                    flags |= flag::PAD;
                }
                src.rel(n.offset())
            }
            None if attr.pad => {
                flags |= flag::SYNTHESIZED;
                NONE
            }
            None => return Err(d.missing("path")),
        };
        if attr.pad {
            flags |= flag::PAD;
        }
        if let Some(list) = symlink {
            b.table.symlinks.push((b.len() as u32, list));
        }
        b.table.path_at.push(path_at);
        b.table.flags.push(flags);
        // BEP 47: a symlink has no data in the torrent, whatever `length` says.
        b.lens.push(if symlink.is_some() { 0 } else { length });
    }
    Ok(b)
}

/// The BEP 52 `file tree`, walked once (no value is read twice, whatever the depth):
/// the files in tree order, and whether the torrent is single-file: a lone file at
/// the root named like the torrent (as libtorrent decides; a lone file under another
/// name goes in a folder named after the torrent). With `pad_to`, a pad file
/// (`.pad/<size>`) follows each file that does not end on a multiple of it, as
/// libtorrent lists them for a v2-only torrent (not for a single file).
///
/// The `info` bytes must have been checked strictly (sorted keys, so a file entry's
/// empty key comes first in its dictionary).
pub(crate) fn parse_v2(
    src: &Source<'_, '_>,
    tree: Node<'_, '_>,
    raw_name: &[u8],
    pad_to: Option<u32>,
) -> Result<Built> {
    let doc = src.doc;
    let input = doc.root().value.raw();
    tree.dict()?;
    let mut b = Built::with_capacity(0, true);
    // Files and pad files listed, stored or not (past `max_files` nothing is stored).
    let mut listed = 0usize;
    let mut real_files = 0usize;
    let mut top_entries = 0usize;
    let mut single_named = false;
    // The directories open around the position, innermost last (NONE: the top).
    let mut open: Vec<u32> = vec![NONE];
    let mut pos = tree.offset() + 1;
    // The input is checked, so a value is wherever the walk expects one: `malformed`
    // is never made (ok: it only keeps the walk free of panics).
    let malformed = |at: usize| Error::InvalidFileTree {
        key: tree.key(),
        offset: at,
        reason: "malformed",
    };
    let view = |at: usize| ValueRef::at(input, at).ok_or_else(|| malformed(at));
    while let Some(&top) = open.last() {
        match input.get(pos) {
            Some(b'e') => {
                open.pop();
                pos += 1;
                continue;
            }
            Some(b'0'..=b'9') => {}
            _ => return Err(malformed(pos)),
        }
        // An entry: a name, then a dictionary (a file or a directory). Only what is
        // needed is read here: a directory is entered, never skipped over.
        let key_offset = pos;
        let key = view(pos)?;
        let name = key.as_bytes().ok_or_else(|| malformed(pos))?;
        let child_at = key.span().end;
        if open.len() == 1 {
            top_entries += 1;
        }
        if name.is_empty() {
            let child = doc.node(view(child_at)?);
            return Err(Error::InvalidFileTree {
                key: child.key(),
                offset: child.offset(),
                reason: "empty file or directory name",
            });
        }
        if input.get(child_at) != Some(&b'd') {
            doc.node(view(child_at)?).dict()?;
            return Err(malformed(child_at));
        }
        let first_key = match input.get(child_at + 1) {
            Some(b'0'..=b'9') => view(child_at + 1)?.as_bytes().map(|k| (k, child_at + 1)),
            _ => None,
        };
        match first_key {
            Some((b"", leaf_key_at)) => {
                let leaf_at = view(leaf_key_at)?.span().end;
                let leaf = doc.node(view(leaf_at)?);
                let leaf_end = leaf.value.span().end;
                if input.get(leaf_end) != Some(&b'e') {
                    let child = doc.node(view(child_at)?);
                    return Err(Error::InvalidFileTree {
                        key: child.key(),
                        offset: child.offset(),
                        reason: "an entry is both a file and a directory",
                    });
                }
                let (len, flags, root, symlink) = parse_v2_file(src, &leaf.dict()?)?;
                real_files += 1;
                if open.len() == 1 && name == raw_name {
                    single_named = true;
                }
                // Past `max_files`, files are counted, not stored.
                let push = |b: &mut Built, listed: &mut usize, entry: (u32, u32, u32, u8, u64)| {
                    if *listed < src.max_files {
                        let (path_at, dir, root, flags, len) = entry;
                        b.table.path_at.push(path_at);
                        b.table.dir.push(dir);
                        b.table.root_at.push(root);
                        b.table.flags.push(flags);
                        b.lens.push(len);
                    }
                    *listed += 1;
                };
                if let Some(list) = symlink {
                    if listed < src.max_files {
                        b.table.symlinks.push((listed as u32, list));
                    }
                }
                push(
                    &mut b,
                    &mut listed,
                    (src.rel(key_offset), top, root, flags, len),
                );
                if let Some(pl) = pad_to {
                    let rem = len % u64::from(pl);
                    if rem != 0 {
                        let pad = flag::PAD | flag::ATTR_PAD | flag::SYNTHESIZED;
                        push(
                            &mut b,
                            &mut listed,
                            (NONE, NONE, NONE, pad, u64::from(pl) - rem),
                        );
                    }
                }
                pos = leaf_end + 1;
            }
            _ => {
                // A directory: enter it.
                let id = u32::try_from(b.table.dirs.len())
                    .ok()
                    .filter(|&id| id != NONE)
                    .ok_or_else(|| src.too_many_files(usize::MAX))?;
                b.table.dirs.push((src.rel(key_offset), top));
                open.push(id);
                pos = child_at + 1;
            }
        }
    }
    if real_files == 0 {
        return Err(Error::InvalidFileTree {
            key: tree.key(),
            offset: tree.offset(),
            reason: "the file tree holds no file",
        });
    }
    b.single = top_entries == 1 && real_files == 1 && single_named;
    if b.single {
        // The file is the torrent: named after it, and no pad after it.
        listed = 1;
        b.table.path_at.truncate(1);
        b.table.dir.truncate(1);
        b.table.root_at.truncate(1);
        b.table.flags.truncate(1);
        b.lens.truncate(1);
        b.table.path_at.fill(NONE);
        b.table.dirs.clear();
    }
    if listed > src.max_files {
        return Err(src.too_many_files(listed));
    }
    Ok(b)
}

/// One file of a v2 file tree: its length, flags, pieces root offset and symlink.
fn parse_v2_file(
    src: &Source<'_, '_>,
    d: &DictNode<'_, '_>,
) -> Result<(u64, u8, u32, Option<u32>)> {
    let [length, attr, symlink_path, pieces_root] =
        d.fields(["length", "attr", "symlink path", "pieces root"]);
    let len_node = length.ok_or_else(|| d.missing("length"))?;
    let length = len_node.length()?;
    if length / u64::from(BLOCK_LEN) >= MAX_V2_FILE_BLOCKS {
        return Err(Error::FileTooLarge {
            key: len_node.key(),
            value: length as i64,
            offset: len_node.offset(),
        });
    }
    let attr = parse_attr(attr)?;
    if attr.pad {
        return Err(Error::InvalidFileTree {
            key: d.key(),
            offset: d.offset(),
            reason: "pad files are not allowed in a file tree",
        });
    }
    let symlink = parse_symlink(src, symlink_path, attr)?;
    let mut root = NONE;
    if length > 0 && symlink.is_none() {
        let root_err = |reason| Error::InvalidPiecesRoot {
            key: format!("{}.pieces root", d.key()),
            offset: d.offset(),
            reason,
        };
        let node = pieces_root.ok_or_else(|| root_err("missing for a non-empty file"))?;
        let bytes = node.bytes()?;
        let value: [u8; 32] = bytes.try_into().map_err(|_| root_err("not 32 bytes"))?;
        if value == [0; 32] {
            return Err(root_err("all zeros"));
        }
        root = src.rel(node.offset());
    }
    let len = if symlink.is_some() { 0 } else { length };
    Ok((len, attr_flags(attr), root, symlink))
}

/// Checks that v1 `files` and the v2 `file tree` of a hybrid torrent describe the same
/// files (pads aside) with every v2 file starting on a piece boundary; returns the v1
/// table with the v2 pieces roots attached.
pub(crate) fn merge_hybrid<'r>(
    raw: &'r [u8],
    raw_name: &'r [u8],
    mut v1: Built,
    v2: Built,
    piece_len: u32,
) -> Result<Built> {
    let inconsistent = |reason: String| Error::InconsistentFiles { reason };
    if v1.single != v2.single {
        return Err(inconsistent(
            "one is a single-file torrent, the other is not".into(),
        ));
    }
    let real = (0..v1.len()).filter(|&i| !v1.table.is_pad(i)).count();
    if real != v2.len() {
        return Err(inconsistent(format!(
            "{real} files in `info.files`, {} in `info.file tree`",
            v2.len()
        )));
    }
    // The elements of file `i` below the torrent's folder, into `out`.
    let elements = |b: &Built, i: usize, out: &mut Vec<Cow<'r, [u8]>>| {
        out.clear();
        if b.single {
            out.push(Cow::Borrowed(raw_name));
        } else {
            let len = b.lens.get(i).copied().unwrap_or(0);
            b.table.raw_elements(raw, i, len, out);
        }
    };
    let (mut p1, mut p2) = (Vec::new(), Vec::new());
    let mut roots = Vec::with_capacity(v1.len());
    let mut offset = 0u64;
    let mut j = 0;
    for i in 0..v1.len() {
        let start = offset;
        let len = v1.lens.get(i).copied().unwrap_or(0);
        offset = offset.checked_add(len).ok_or(Error::TotalLengthOverflow)?;
        if v1.table.is_pad(i) {
            roots.push(NONE);
            continue;
        }
        elements(&v1, i, &mut p1);
        elements(&v2, j, &mut p2);
        if p1 != p2 {
            let join = |p: &[Cow<'_, [u8]>]| String::from_utf8_lossy(&p.join(&b'/')).into_owned();
            return Err(inconsistent(format!(
                "file {i}: path {:?} in `files`, {:?} in `file tree`",
                join(&p1),
                join(&p2),
            )));
        }
        let len2 = v2.lens.get(j).copied().unwrap_or(0);
        if len != len2 {
            return Err(inconsistent(format!(
                "file {i}: length {len} in `files`, {len2} in `file tree`"
            )));
        }
        if len > 0 && start % u64::from(piece_len) != 0 {
            return Err(inconsistent(format!(
                "file {i} starts at byte {start}, not on a piece boundary"
            )));
        }
        roots.push(v2.table.root_at.get(j).copied().unwrap_or(NONE));
        j += 1;
    }
    v1.table.root_at = roots;
    Ok(v1)
}
