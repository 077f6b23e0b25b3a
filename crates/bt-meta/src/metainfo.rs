//! `.torrent` files: [`Metainfo`], [`Info`], [`FileEntry`].
//!
//! Parsing walks the decoded [`bt_bencode::Value`] tree instead of going through serde
//! structs: every value keeps its byte offset and key path, so each error says where
//! (`info.files[3].length` at byte 1234), and the `info` dictionary's exact bytes come
//! from the decoder's span, so the info-hash is never computed over a re-encoding.

use std::collections::{BTreeMap, HashSet};

use bt_bencode::{DecodeOptions, Value};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::geometry::{Geometry, BLOCK_LEN, MAX_PIECE_LEN};
use crate::hash::{InfoHash, InfoHashV2};
use crate::magnet::Magnet;
use crate::path::{clean_component, join_under, sanitize_component, unique_name};
use crate::walk::{DictNode, Node};

/// How many renaming attempts duplicate file names may cost in total before the
/// torrent is refused (libtorrent's `max_duplicate_filenames`).
pub const MAX_DUPLICATE_COLLISIONS: u32 = 1000;

/// Prefix of BitComet-style pad files that carry no `attr`.
const LEGACY_PAD_PREFIX: &[u8] = b"_____padding_file_";

/// BEP 47 file attributes (`attr`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
pub struct FileAttr {
    /// `p`: a pad file (zeros that align the next file; never written to disk).
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link (with `symlink path`).
    pub symlink: bool,
}

impl FileAttr {
    /// Reads an `attr` string; unknown letters are ignored.
    pub fn parse(attr: &[u8]) -> Self {
        Self {
            pad: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }

    /// The `attr` string (empty when no flag is set).
    pub fn to_attr_string(&self) -> String {
        let mut s = String::new();
        for (on, c) in [
            (self.executable, 'x'),
            (self.hidden, 'h'),
            (self.symlink, 'l'),
            (self.pad, 'p'),
        ] {
            if on {
                s.push(c);
            }
        }
        s
    }
}

/// One file of a torrent, in the order of the torrent's byte stream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FileEntry {
    /// Sanitized path elements relative to the download folder, the torrent's folder
    /// name first for a multi-file torrent (see [`crate::path`]). Duplicates (compared
    /// case-insensitively) are renamed `name.1.ext`, like libtorrent does.
    pub path: Vec<String>,
    /// The path elements exactly as the torrent has them, one for one with `path`.
    pub raw_path: Vec<Vec<u8>>,
    /// Length in bytes (0 for a symlink, whatever the torrent says).
    pub length: u64,
    /// Offset of the file's first byte in the torrent's byte stream.
    pub offset: u64,
    /// BEP 47 attributes.
    pub attr: FileAttr,
    /// A pad file: `attr` `p`, a legacy `_____padding_file_` name, or one synthesized
    /// for a v2-only torrent. Pad files hold zeros and are never written to disk.
    pub pad: bool,
    /// For a symlink: its sanitized target relative to the download folder.
    pub symlink_target: Option<Vec<String>>,
    /// The BEP 52 merkle root of the file's data (v2 and hybrid torrents).
    pub pieces_root: Option<[u8; 32]>,
}

impl FileEntry {
    /// Where this file goes under `base`: always inside `base`, whatever the torrent
    /// says (every element is a single normal path component).
    pub fn path_under(&self, base: &std::path::Path) -> std::path::PathBuf {
        join_under(base, &self.path)
    }

    /// The sanitized path joined with `/`, for display.
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }
}

/// Which BitTorrent metadata versions a torrent carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MetaVersion {
    /// BEP 3 only: `pieces`.
    V1,
    /// BEP 52 only: `file tree`, `meta version` 2.
    V2,
    /// Both, describing the same files.
    Hybrid,
}

/// The `info` dictionary, validated.
#[derive(Clone, Debug)]
pub struct Info {
    /// Sanitized name (from `name.utf-8` when present, else `name`); the info-hash in
    /// hex when the raw name is empty or only dots.
    pub name: String,
    /// The name's bytes as in the torrent.
    pub raw_name: Vec<u8>,
    /// Nominal piece length.
    pub piece_len: u32,
    /// The v1 SHA-1 piece hashes (empty for a v2-only torrent).
    pub pieces: Vec<[u8; 20]>,
    /// The `private` flag (BEP 27).
    pub private: bool,
    /// `source` (used by private trackers to vary the info-hash).
    pub source: Option<String>,
    /// Every file, pad files included, in byte-stream order.
    pub files: Vec<FileEntry>,
    /// Single-file torrent (`length` / a lone file at the root of the file tree).
    pub single_file: bool,
    /// v1, v2 or hybrid.
    pub version: MetaVersion,
    geometry: Geometry,
}

impl Info {
    /// Piece and file geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Total bytes, pad files included.
    pub fn total_len(&self) -> u64 {
        self.geometry.total_len()
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.geometry.num_pieces()
    }
}

/// A parsed and validated `.torrent`.
#[derive(Clone, Debug)]
pub struct Metainfo {
    /// `announce`.
    pub announce: Option<String>,
    /// `announce-list` (BEP 12), tiers in order; empty tiers and URLs are dropped.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` web seeds (BEP 19), a string or a list in the file.
    pub web_seeds: Vec<String>,
    /// `creation date` (seconds since the Unix epoch).
    pub creation_date: Option<i64>,
    /// `comment`.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `encoding`.
    pub encoding: Option<String>,
    /// The validated `info` dictionary.
    pub info: Info,
    /// SHA-1 of the raw `info` bytes, if the torrent has v1 metadata.
    pub info_hash: Option<InfoHash>,
    /// SHA-256 of the raw `info` bytes, if the torrent has v2 metadata.
    pub info_hash_v2: Option<InfoHashV2>,
    /// BEP 52 `piece layers`: pieces root -> SHA-256 hashes of each piece of that file,
    /// each checked against its root.
    pub piece_layers: BTreeMap<[u8; 32], Vec<[u8; 32]>>,
    raw_info: Vec<u8>,
}

/// A file as read from v1 `files` / `length` or the v2 `file tree`, before sanitizing.
struct RawFile {
    /// Elements below the torrent's folder (for a single-file torrent: the name).
    path: Vec<Vec<u8>>,
    length: u64,
    attr: FileAttr,
    pad: bool,
    symlink: Option<Vec<Vec<u8>>>,
    pieces_root: Option<[u8; 32]>,
}

fn sha256(data: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in data {
        h.update(d);
    }
    h.finalize().into()
}

/// The merkle root over `leaves`, padded with `pad` to a power of two.
pub(crate) fn merkle_root(leaves: &[[u8; 32]], pad: [u8; 32]) -> [u8; 32] {
    let mut level = leaves.to_vec();
    level.resize(leaves.len().next_power_of_two().max(1), pad);
    while level.len() > 1 {
        level = level.chunks(2).map(|p| sha256(&[&p[0], &p[1]])).collect();
    }
    level[0]
}

/// The root of a subtree of `piece_len / 16 KiB` zero leaves: the hash that pads a
/// piece layer.
fn piece_pad_hash(piece_len: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    let mut n = piece_len / BLOCK_LEN;
    while n > 1 {
        h = sha256(&[&h, &h]);
        n /= 2;
    }
    h
}

fn hex_name(info_hash: Option<InfoHash>, v2: Option<InfoHashV2>) -> String {
    info_hash
        .map(|h| h.to_hex())
        .or(v2.map(|h| h.to_hex()))
        .unwrap_or_default()
}

fn opt_string(d: &DictNode<'_, '_>, key: &str) -> Option<String> {
    d.get(key)
        .and_then(|n| n.string().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn push_url(list: &mut Vec<String>, url: &[u8]) {
    let url = String::from_utf8_lossy(url).trim().to_string();
    if !url.is_empty() && !list.contains(&url) {
        list.push(url);
    }
}

impl Metainfo {
    /// Parses and validates a `.torrent`. Trailing bytes after the top-level
    /// dictionary are ignored (as libtorrent and Transmission do); non-canonical
    /// bencode is accepted in v1 torrents and refused inside a v2 `info` dictionary.
    pub fn from_bytes(input: &[u8]) -> Result<Self> {
        let root_value = DecodeOptions::default().decode(input)?;
        let root = Node::root(&root_value, input, "torrent").dict()?;
        let root = root.renamed("");
        let info_node = root.req("info")?;
        let info = info_node.dict()?;
        let info_span = root
            .dict
            .span(b"info")
            .expect("the info entry exists, so it has a span");
        let raw_info = &input[info_span.clone()];
        info.reject_duplicate_keys()?;

        let meta_version = match info.get("meta version") {
            Some(n) => match n.int()? {
                v @ (1 | 2) => Some(v),
                v => {
                    return Err(Error::UnsupportedMetaVersion {
                        value: v,
                        offset: n.offset,
                    })
                }
            },
            None => None,
        };
        let has_v2 = meta_version == Some(2);
        let has_v1 = info.get("pieces").is_some() || !has_v2;
        if has_v2 {
            // BEP 52 torrents must be canonical bencode (libtorrent enforces it too).
            bt_bencode::decode_strict(raw_info).map_err(|mut e| {
                e.offset += info_span.start;
                e.path = if e.path.is_empty() {
                    "info".into()
                } else {
                    format!("info.{}", e.path)
                };
                Error::Bencode(e)
            })?;
        }
        let info_hash = has_v1.then(|| InfoHash(Sha1::digest(raw_info).into()));
        let info_hash_v2 = has_v2.then(|| InfoHashV2(sha256(&[raw_info])));

        // piece length
        let pl_node = info.req("piece length")?;
        let pl = pl_node.int()?;
        let pl_err = |reason| Error::PieceLength {
            key: pl_node.key.clone(),
            value: pl,
            offset: pl_node.offset,
            reason,
        };
        if pl <= 0 {
            return Err(pl_err("must be positive"));
        }
        if pl as u64 > MAX_PIECE_LEN {
            return Err(pl_err("is over 512 MiB"));
        }
        if has_v2 && (pl < i64::from(BLOCK_LEN) || (pl & (pl - 1)) != 0) {
            return Err(pl_err(
                "must be a power of two of at least 16 KiB in a v2 torrent",
            ));
        }
        let piece_len = pl as u32; // ok: checked above

        // name
        let name_node = match info.get("name.utf-8") {
            Some(n) if n.value.as_bytes().is_some() => n,
            _ => info.req("name")?,
        };
        let raw_name = name_node.bytes()?.to_vec();
        let name = if String::from_utf8_lossy(&raw_name)
            .trim_matches(['.', ' '])
            .is_empty()
        {
            hex_name(info_hash, info_hash_v2)
        } else {
            let cleaned = clean_component(&raw_name);
            if cleaned.is_empty() {
                return Err(Error::InvalidName {
                    key: name_node.key.clone(),
                    offset: name_node.offset,
                    reason: "the name holds only control characters",
                });
            }
            sanitize_component(&raw_name)
        };

        let v1 = if has_v1 {
            Some(parse_v1_files(&info, &raw_name)?)
        } else {
            None
        };
        let v2 = if has_v2 {
            Some(parse_file_tree(&info.req("file tree")?, &raw_name)?)
        } else {
            None
        };

        let (raw_files, single_file, version) = match (v1, v2) {
            (Some((files, single)), None) => (files, single, MetaVersion::V1),
            (None, Some((files, single))) => (
                pad_v2_files(files, single, piece_len),
                single,
                MetaVersion::V2,
            ),
            (Some((v1_files, v1_single)), Some((v2_files, v2_single))) => {
                let files = merge_hybrid(v1_files, v1_single, v2_files, v2_single, piece_len)?;
                (files, v1_single, MetaVersion::Hybrid)
            }
            (None, None) => unreachable!("has_v1 || has_v2"),
        };

        let geometry = Geometry::new(u64::from(piece_len), raw_files.iter().map(|f| f.length))
            .map_err(|e| match e {
                Error::PieceLength { .. } => pl_err("is out of range"),
                e => e,
            })?;
        if geometry.total_len() == 0 {
            return Err(Error::EmptyTorrent);
        }

        let mut pieces = Vec::new();
        if has_v1 {
            let node = info.req("pieces")?;
            let bytes = node.bytes()?;
            if bytes.len() % 20 != 0 {
                return Err(Error::PiecesNotMultipleOf20 {
                    len: bytes.len(),
                    offset: node.offset,
                });
            }
            let found = (bytes.len() / 20) as u64;
            if found != u64::from(geometry.num_pieces()) {
                return Err(Error::PieceCountMismatch {
                    found,
                    expected: geometry.num_pieces().into(),
                    total_len: geometry.total_len(),
                    piece_len: piece_len.into(),
                    offset: node.offset,
                });
            }
            pieces = bytes
                .chunks_exact(20)
                .map(|c| c.try_into().expect("20 bytes"))
                .collect();
        }

        let files = finish_files(raw_files, &name, &raw_name, single_file, &geometry)?;

        let piece_layers = match root.get("piece layers") {
            Some(node) if has_v2 => parse_piece_layers(&node, &files, piece_len)?,
            _ => BTreeMap::new(),
        };

        let private = info.get("private").and_then(|n| n.int().ok()) == Some(1);
        let source = opt_string(&info, "source");

        let mut announce_list = Vec::new();
        if let Some(tiers) = root.get("announce-list").and_then(|n| n.list().ok()) {
            for tier in tiers {
                let mut urls = Vec::new();
                match tier.value {
                    Value::List(items) => {
                        for u in items.iter().filter_map(Value::as_bytes) {
                            push_url(&mut urls, u);
                        }
                    }
                    // Some writers flatten the tiers into a list of strings.
                    Value::Bytes(u) => push_url(&mut urls, u),
                    _ => {}
                }
                if !urls.is_empty() {
                    announce_list.push(urls);
                }
            }
        }
        let mut web_seeds = Vec::new();
        match root.get("url-list").map(|n| n.value) {
            Some(Value::Bytes(u)) => push_url(&mut web_seeds, u),
            Some(Value::List(items)) => {
                for u in items.iter().filter_map(Value::as_bytes) {
                    push_url(&mut web_seeds, u);
                }
            }
            _ => {}
        }

        Ok(Metainfo {
            announce: opt_string(&root, "announce"),
            announce_list,
            web_seeds,
            creation_date: root.get("creation date").and_then(|n| n.int().ok()),
            comment: opt_string(&root, "comment"),
            created_by: opt_string(&root, "created by"),
            encoding: opt_string(&root, "encoding"),
            info: Info {
                name,
                raw_name,
                piece_len,
                pieces,
                private,
                source,
                files,
                single_file,
                version,
                geometry,
            },
            info_hash,
            info_hash_v2,
            piece_layers,
            raw_info: raw_info.to_vec(),
        })
    }

    /// The exact bytes of the `info` dictionary (what ut_metadata serves).
    pub fn raw_info(&self) -> &[u8] {
        &self.raw_info
    }

    /// Trackers by tier: `announce-list` when it has any, else `announce` alone.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }

    /// A magnet link for this torrent: hashes, name, trackers, web seeds.
    pub fn magnet(&self) -> Magnet {
        let mut trackers = Vec::new();
        for url in self.trackers().into_iter().flatten() {
            if !trackers.contains(&url) {
                trackers.push(url);
            }
        }
        Magnet {
            info_hash: self.info_hash,
            info_hash_v2: self.info_hash_v2,
            display_name: Some(self.info.name.clone()),
            trackers,
            web_seeds: self.web_seeds.clone(),
            peers: Vec::new(),
            select_only: None,
        }
    }

    /// The v1 SHA-1 hash of `piece`, if the torrent has v1 metadata and the piece exists.
    pub fn piece_hash(&self, piece: crate::PieceIndex) -> Option<&[u8; 20]> {
        self.info.pieces.get(piece.0 as usize)
    }
}

fn parse_attr(d: &DictNode<'_, '_>) -> Result<FileAttr> {
    match d.get("attr") {
        Some(n) => Ok(FileAttr::parse(n.bytes()?)),
        None => Ok(FileAttr::default()),
    }
}

/// `symlink path` when `attr` has `l` and the list is there.
fn parse_symlink(d: &DictNode<'_, '_>, attr: FileAttr) -> Result<Option<Vec<Vec<u8>>>> {
    if !attr.symlink {
        return Ok(None);
    }
    match d.get("symlink path") {
        Some(n) => Ok(Some(
            n.byte_list()?.into_iter().map(<[u8]>::to_vec).collect(),
        )),
        None => Ok(None),
    }
}

/// v1 `files` (multi-file) or `length` (single file). Returns the files and whether
/// the torrent is single-file.
fn parse_v1_files(info: &DictNode<'_, '_>, raw_name: &[u8]) -> Result<(Vec<RawFile>, bool)> {
    let Some(files_node) = info.get("files") else {
        let len_node = info.req("length")?;
        let attr = parse_attr(info)?;
        return Ok((
            vec![RawFile {
                path: vec![raw_name.to_vec()],
                length: len_node.length()?,
                attr,
                pad: false,
                symlink: None,
                pieces_root: None,
            }],
            true,
        ));
    };
    let items = files_node.list()?;
    if items.is_empty() {
        return Err(Error::NoFiles {
            offset: files_node.offset,
        });
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let d = item.dict()?;
        let attr = parse_attr(&d)?;
        let symlink = parse_symlink(&d, attr)?;
        let length = match (d.get("length"), &symlink) {
            (Some(n), _) => n.length()?,
            (None, Some(_)) => 0,
            (None, None) => return Err(d.req("length").err().expect("missing")),
        };
        let path_node = match d.get("path.utf-8") {
            Some(n) if n.byte_list().is_ok() => Some(n),
            _ => d.get("path"),
        };
        let path: Vec<Vec<u8>> = match &path_node {
            Some(n) => n.byte_list()?.into_iter().map(<[u8]>::to_vec).collect(),
            None if attr.pad => vec![b".pad".to_vec(), length.to_string().into_bytes()],
            None => return Err(d.req("path").err().expect("missing")),
        };
        if path.is_empty() && !attr.pad {
            let n = path_node.expect("a path list was read");
            return Err(Error::InvalidName {
                key: n.key,
                offset: n.offset,
                reason: "empty path list",
            });
        }
        let legacy_pad = path
            .last()
            .is_some_and(|last| last.starts_with(LEGACY_PAD_PREFIX));
        out.push(RawFile {
            path,
            // BEP 47: a symlink has no data in the torrent, whatever `length` says.
            length: if symlink.is_some() { 0 } else { length },
            attr,
            pad: attr.pad || legacy_pad,
            symlink,
            pieces_root: None,
        });
    }
    Ok((out, false))
}

/// Largest v2 file: fewer than `i32::MAX / 2` blocks (libtorrent's limit).
const MAX_V2_FILE_BLOCKS: u64 = (i32::MAX / 2) as u64;

/// The BEP 52 `file tree`: files in tree order, and whether the torrent is
/// single-file: a lone file at the root named like the torrent (as libtorrent decides;
/// a lone file under another name goes in a folder named after the torrent).
fn parse_file_tree(tree: &Node<'_, '_>, raw_name: &[u8]) -> Result<(Vec<RawFile>, bool)> {
    let dir = tree.dict()?;
    let mut out = Vec::new();
    walk_tree(&dir, &mut Vec::new(), &mut out)?;
    let single = dir.len() == 1 && out.len() == 1 && out[0].path == [raw_name];
    if out.is_empty() {
        return Err(Error::InvalidFileTree {
            key: tree.key.clone(),
            offset: tree.offset,
            reason: "the file tree holds no file",
        });
    }
    Ok((out, single))
}

fn walk_tree(
    dir: &DictNode<'_, '_>,
    prefix: &mut Vec<Vec<u8>>,
    out: &mut Vec<RawFile>,
) -> Result<()> {
    for (name, node) in dir.entries() {
        if name.is_empty() {
            return Err(Error::InvalidFileTree {
                key: node.key,
                offset: node.offset,
                reason: "empty file or directory name",
            });
        }
        let child = node.dict()?;
        prefix.push(name.to_vec());
        match child.get("") {
            Some(leaf) => {
                if child.len() != 1 {
                    return Err(Error::InvalidFileTree {
                        key: child.key,
                        offset: child.offset,
                        reason: "an entry is both a file and a directory",
                    });
                }
                out.push(parse_v2_file(&leaf.dict()?, prefix.clone())?);
            }
            None => walk_tree(&child, prefix, out)?,
        }
        prefix.pop();
    }
    Ok(())
}

fn parse_v2_file(d: &DictNode<'_, '_>, path: Vec<Vec<u8>>) -> Result<RawFile> {
    let len_node = d.req("length")?;
    let length = len_node.length()?;
    if length / u64::from(BLOCK_LEN) >= MAX_V2_FILE_BLOCKS {
        return Err(Error::FileTooLarge {
            key: len_node.key,
            value: length as i64,
            offset: len_node.offset,
        });
    }
    let attr = parse_attr(d)?;
    if attr.pad {
        return Err(Error::InvalidFileTree {
            key: d.key.clone(),
            offset: d.offset,
            reason: "pad files are not allowed in a file tree",
        });
    }
    let symlink = parse_symlink(d, attr)?;
    let mut pieces_root = None;
    if length > 0 && symlink.is_none() {
        let root_err = |reason| Error::InvalidPiecesRoot {
            key: format!("{}.pieces root", d.key),
            offset: d.offset,
            reason,
        };
        let node = d
            .get("pieces root")
            .ok_or(root_err("missing for a non-empty file"))?;
        let bytes = node.bytes()?;
        let root: [u8; 32] = bytes.try_into().map_err(|_| root_err("not 32 bytes"))?;
        if root == [0; 32] {
            return Err(root_err("all zeros"));
        }
        pieces_root = Some(root);
    }
    Ok(RawFile {
        path,
        length: if symlink.is_some() { 0 } else { length },
        attr,
        pad: false,
        symlink,
        pieces_root,
    })
}

/// A v2-only torrent aligns every file to a piece boundary: like libtorrent, insert a
/// pad file (`.pad/<size>`) after each file that does not end on one, so the piece
/// geometry is the same as for v1 and hybrid torrents.
fn pad_v2_files(files: Vec<RawFile>, single: bool, piece_len: u32) -> Vec<RawFile> {
    if single {
        return files;
    }
    let pl = u64::from(piece_len);
    let mut out = Vec::with_capacity(files.len() * 2);
    for f in files {
        let rem = f.length % pl;
        out.push(f);
        if rem != 0 {
            let pad_len = pl - rem;
            out.push(RawFile {
                path: vec![b".pad".to_vec(), pad_len.to_string().into_bytes()],
                length: pad_len,
                attr: FileAttr {
                    pad: true,
                    ..FileAttr::default()
                },
                pad: true,
                symlink: None,
                pieces_root: None,
            });
        }
    }
    out
}

/// Checks that v1 `files` and the v2 `file tree` of a hybrid torrent describe the same
/// files (pads aside) with every v2 file starting on a piece boundary; returns the v1
/// list with the v2 pieces roots attached.
fn merge_hybrid(
    mut v1: Vec<RawFile>,
    v1_single: bool,
    v2: Vec<RawFile>,
    v2_single: bool,
    piece_len: u32,
) -> Result<Vec<RawFile>> {
    let inconsistent = |reason: String| Error::InconsistentFiles { reason };
    if v1_single != v2_single {
        return Err(inconsistent(
            "one is a single-file torrent, the other is not".into(),
        ));
    }
    let real = v1.iter().filter(|f| !f.pad).count();
    if real != v2.len() {
        return Err(inconsistent(format!(
            "{real} files in `info.files`, {} in `info.file tree`",
            v2.len()
        )));
    }
    let mut v2 = v2.into_iter();
    let mut offset = 0u64;
    for (i, f) in v1.iter_mut().enumerate() {
        let start = offset;
        offset = offset
            .checked_add(f.length)
            .ok_or(Error::TotalLengthOverflow)?;
        if f.pad {
            continue;
        }
        let g = v2.next().expect("counted above");
        if f.path != g.path {
            return Err(inconsistent(format!(
                "file {i}: path {:?} in `files`, {:?} in `file tree`",
                String::from_utf8_lossy(&f.path.join(&b'/')),
                String::from_utf8_lossy(&g.path.join(&b'/')),
            )));
        }
        if f.length != g.length {
            return Err(inconsistent(format!(
                "file {i}: length {} in `files`, {} in `file tree`",
                f.length, g.length
            )));
        }
        if f.length > 0 && start % u64::from(piece_len) != 0 {
            return Err(inconsistent(format!(
                "file {i} starts at byte {start}, not on a piece boundary"
            )));
        }
        f.pieces_root = g.pieces_root;
    }
    Ok(v1)
}

/// Sanitizes paths, renames duplicates, computes offsets.
fn finish_files(
    raw: Vec<RawFile>,
    name: &str,
    raw_name: &[u8],
    single_file: bool,
    geometry: &Geometry,
) -> Result<Vec<FileEntry>> {
    let with_root = |components: &[Vec<u8>]| -> (Vec<String>, Vec<Vec<u8>>) {
        let mut path = Vec::with_capacity(components.len() + 1);
        let mut raw_path = Vec::with_capacity(components.len() + 1);
        if !single_file {
            path.push(name.to_string());
            raw_path.push(raw_name.to_vec());
        }
        for c in components {
            path.push(sanitize_component(c));
            raw_path.push(c.clone());
        }
        (path, raw_path)
    };
    let mut files: Vec<FileEntry> = raw
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let (mut path, raw_path) = with_root(&f.path);
            if single_file {
                // The file is the torrent: it takes the torrent's (sanitized) name.
                path = vec![name.to_string()];
            }
            FileEntry {
                path,
                raw_path,
                length: f.length,
                // ok: the geometry was laid out from these files
                offset: geometry.file_offset(i).unwrap_or(0),
                attr: f.attr,
                pad: f.pad,
                symlink_target: f.symlink.map(|t| with_root(&t).0),
                pieces_root: f.pieces_root,
            }
        })
        .collect();

    // Duplicate paths (case-insensitive, files against files and directories) are
    // renamed like libtorrent does; pad files are never written, so they don't count.
    let key = |p: &[String]| p.join("/").to_lowercase();
    let mut dirs: HashSet<String> = HashSet::new();
    for f in files.iter().filter(|f| !f.pad) {
        for n in 1..f.path.len() {
            dirs.insert(key(&f.path[..n]));
        }
    }
    let mut taken: HashSet<String> = HashSet::new();
    let mut budget = MAX_DUPLICATE_COLLISIONS;
    for f in files.iter_mut().filter(|f| !f.pad) {
        let k = key(&f.path);
        if !taken.contains(&k) && !dirs.contains(&k) {
            taken.insert(k);
            continue;
        }
        let parent = key(&f.path[..f.path.len() - 1]);
        let is_taken = |candidate: &str| {
            let k = if parent.is_empty() {
                candidate.to_lowercase()
            } else {
                format!("{parent}/{}", candidate.to_lowercase())
            };
            taken.contains(&k) || dirs.contains(&k)
        };
        let new_name = unique_name(&f.path, &is_taken, &mut budget).ok_or_else(|| {
            Error::TooManyDuplicateFilenames {
                path: f.display_path(),
            }
        })?;
        *f.path.last_mut().expect("paths are never empty") = new_name;
        taken.insert(key(&f.path));
    }
    Ok(files)
}

/// BEP 52 `piece layers`: every entry must belong to a file of the torrent, hold a
/// whole number of SHA-256 hashes, one per piece of that file, and hash up to the
/// file's pieces root. Files may lack an entry (libtorrent accepts that).
fn parse_piece_layers(
    node: &Node<'_, '_>,
    files: &[FileEntry],
    piece_len: u32,
) -> Result<BTreeMap<[u8; 32], Vec<[u8; 32]>>> {
    let layers = node.dict()?;
    let lengths: BTreeMap<[u8; 32], u64> = files
        .iter()
        .filter_map(|f| f.pieces_root.map(|r| (r, f.length)))
        .collect();
    let pad = piece_pad_hash(piece_len);
    let mut out = BTreeMap::new();
    for (key, value) in layers.entries() {
        let err = |reason: String| Error::InvalidPieceLayer {
            root: hex::encode(key),
            offset: value.offset,
            reason,
        };
        let root: [u8; 32] = key
            .try_into()
            .map_err(|_| err(format!("key is {} bytes, not 32", key.len())))?;
        let Some(&file_len) = lengths.get(&root) else {
            return Err(err("matches no file's pieces root".into()));
        };
        let bytes = value.bytes()?;
        if bytes.len() % 32 != 0 {
            return Err(err(format!(
                "{} bytes is not a multiple of 32",
                bytes.len()
            )));
        }
        let hashes: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32 bytes"))
            .collect();
        let expected = file_len.div_ceil(u64::from(piece_len));
        if hashes.len() as u64 != expected {
            return Err(err(format!(
                "{} hashes for a file of {expected} pieces",
                hashes.len()
            )));
        }
        if expected > 1 && merkle_root(&hashes, pad) != root {
            return Err(err("does not hash to the file's pieces root".into()));
        }
        out.insert(root, hashes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(info: &str) -> Vec<u8> {
        format!("d8:announce14:http://t/a/ann4:info{info}e").into_bytes()
    }

    fn pieces(n: usize) -> String {
        format!("{}:{}", n * 20, "x".repeat(n * 20))
    }

    #[test]
    fn single_file() {
        let t = torrent(&format!(
            "d6:lengthi20000e4:name5:a.bin12:piece lengthi16384e6:pieces{}e",
            pieces(2)
        ));
        let m = Metainfo::from_bytes(&t).unwrap();
        assert_eq!(m.info.name, "a.bin");
        assert!(m.info.single_file);
        assert_eq!(m.info.files[0].path, vec!["a.bin"]);
        assert_eq!(m.info.num_pieces(), 2);
        assert_eq!(m.trackers(), vec![vec!["http://t/a/ann".to_string()]]);
        let start = t.windows(6).position(|w| w == b"4:info").unwrap() + 6;
        assert_eq!(m.raw_info(), &t[start..t.len() - 1]);
        assert_eq!(
            m.info_hash.unwrap().0,
            <[u8; 20]>::from(Sha1::digest(m.raw_info()))
        );
        assert_eq!(m.info.version, MetaVersion::V1);
    }

    #[test]
    fn errors_name_key_and_offset() {
        let t = torrent(&format!(
            "d6:lengthi20000e4:name1:a12:piece lengthi0e6:pieces{}e",
            pieces(2)
        ));
        let e = Metainfo::from_bytes(&t).unwrap_err();
        assert!(
            matches!(&e, Error::PieceLength { key, offset, .. }
                if key == "info.piece length" && &t[*offset..*offset + 3] == b"i0e"),
            "{e}"
        );
        assert!(e.to_string().contains("info.piece length"), "{e}");

        let t = torrent(&format!(
            "d5:filesld6:lengthi5e4:pathl1:aeed6:lengthi-5e4:pathl1:beee4:name1:d\
             12:piece lengthi16384e6:pieces{}e",
            pieces(1)
        ));
        let e = Metainfo::from_bytes(&t).unwrap_err();
        assert!(
            matches!(&e, Error::NegativeLength { key, value: -5, offset }
                if key == "info.files[1].length" && &t[*offset..*offset + 4] == b"i-5e"),
            "{e}"
        );

        let t = torrent("d6:lengthi20000e4:name1:a6:pieces0:e");
        let e = Metainfo::from_bytes(&t).unwrap_err();
        assert!(
            matches!(&e, Error::MissingKey { key, .. } if key == "info.piece length"),
            "{e}"
        );

        let t = torrent("d6:lengthi20000e4:name1:a12:piece lengthi16384e6:pieces3:abce");
        assert!(matches!(
            Metainfo::from_bytes(&t),
            Err(Error::PiecesNotMultipleOf20 { len: 3, .. })
        ));
        let t = torrent(&format!(
            "d6:lengthi20000e4:name1:a12:piece lengthi16384e6:pieces{}e",
            pieces(3)
        ));
        assert!(matches!(
            Metainfo::from_bytes(&t),
            Err(Error::PieceCountMismatch {
                found: 3,
                expected: 2,
                ..
            })
        ));
        let t = torrent("d6:lengthi1e4:name1:a12:piece lengthi536870913e6:pieces0:e");
        assert!(matches!(
            Metainfo::from_bytes(&t),
            Err(Error::PieceLength { .. })
        ));
        let e = Metainfo::from_bytes(b"d4:infoi1ee").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`info` must be a dictionary, found integer at byte 7"
        );
        let e = Metainfo::from_bytes(b"l4:infoe").unwrap_err();
        assert!(
            e.to_string().contains("`torrent` must be a dictionary"),
            "{e}"
        );
        let e = Metainfo::from_bytes(b"d4:infod").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("bencode: unexpected end of input at byte 8"),
            "{e}"
        );
    }

    #[test]
    fn hostile_paths_and_duplicates() {
        let t = torrent(&format!(
            "d5:filesl\
             d6:lengthi1e4:pathl2:..6:C:evil5:a\\b/cee\
             d6:lengthi1e4:pathl3:dup5:x.txte\
             e\
             d6:lengthi1e4:pathl3:DUP5:X.TXTee\
             d6:lengthi1e4:pathl3:dupee\
             e4:name2:..12:piece lengthi16384e6:pieces{}e",
            pieces(1)
        ));
        let m = Metainfo::from_bytes(&t).unwrap();
        let name = m.info_hash.unwrap().to_hex();
        let paths: Vec<String> = m.info.files.iter().map(|f| f.display_path()).collect();
        assert_eq!(
            paths,
            vec![
                format!("{name}/_/C_evil/a_b_c"),
                format!("{name}/dup/x.txt"),
                format!("{name}/DUP/X.1.TXT"),
                format!("{name}/dup.1"),
            ]
        );
        assert_eq!(m.info.files[0].raw_path[1], b"..");
        assert_eq!(m.info.raw_name, b"..");
        let base = std::path::Path::new("/dl");
        for f in &m.info.files {
            assert!(f.path_under(base).starts_with(base));
        }
    }

    #[test]
    fn merkle_pad() {
        // One zero leaf level up: the root of two zero blocks.
        assert_eq!(piece_pad_hash(BLOCK_LEN), [0; 32]);
        assert_eq!(piece_pad_hash(2 * BLOCK_LEN), sha256(&[&[0; 32], &[0; 32]]));
        let a = [1u8; 32];
        assert_eq!(merkle_root(&[a], [0; 32]), a);
        assert_eq!(merkle_root(&[a, a, a], [9; 32]), {
            let l = sha256(&[&a, &a]);
            let r = sha256(&[&a, &[9; 32]]);
            sha256(&[&l, &r])
        });
    }
}
