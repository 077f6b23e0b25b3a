//! `.torrent` files: [`Metainfo`], [`Info`], and the [`LoadConfig`] limits.
//!
//! Parsing reads the input through borrowed views ([`bt_bencode::ValueRef`]) after one
//! checking pass: no tree is built, every error still names its key path and byte
//! offset (`info.files[3].length` at byte 1234), and the `info` dictionary's exact
//! bytes come from the input, so the info-hash is never computed over a
//! re-encoding. [`Info`] keeps those bytes; the piece hashes are read from them and
//! the file table ([`crate::files`]) points into them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bt_bencode::{DecodeOptions, ErrorKind};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::dedup::{self, Keys};
use crate::error::{Error, Result};
use crate::files::{self, FileTable, Files, Source};
use crate::geometry::{Geometry, BLOCK_LEN, MAX_PIECE_LEN};
use crate::hash::{InfoHash, InfoHashV2};
use crate::limits::LoadConfig;
use crate::magnet::Magnet;
use crate::path::{clean_component, lossy_trimmed, sanitize_component, sanitize_component_cow};
use crate::urls::UrlTiers;
use crate::walk::{key_name, DictNode, Doc, Node};

/// How many renaming attempts duplicate file names may cost in total before the
/// torrent is refused (libtorrent's `max_duplicate_filenames`).
pub const MAX_DUPLICATE_COLLISIONS: u32 = 1000;

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

/// The `info` dictionary, validated. It keeps the dictionary's bytes (shared by
/// clones): the piece hashes are read from them and the file table points into them.
#[derive(Clone)]
pub struct Info {
    /// Sanitized name (from `name.utf-8` when present, else `name`); the info-hash in
    /// hex when the raw name is empty or only dots.
    pub name: String,
    /// The name's bytes as in the torrent.
    pub raw_name: Vec<u8>,
    /// Nominal piece length.
    pub piece_len: u32,
    /// The `private` flag (BEP 27).
    pub private: bool,
    /// `source` (used by private trackers to vary the info-hash).
    pub source: Option<String>,
    /// Single-file torrent (`length` / a lone file at the root of the file tree).
    pub single_file: bool,
    /// v1, v2 or hybrid.
    pub version: MetaVersion,
    geometry: Geometry,
    /// The exact bytes of the `info` dictionary.
    raw: Arc<[u8]>,
    /// Where the v1 piece hashes are in `raw` (empty for a v2-only torrent).
    pieces_at: std::ops::Range<usize>,
    files: FileTable,
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

    /// Every file, pad files included, in byte-stream order.
    pub fn files(&self) -> Files<'_> {
        Files::new(self)
    }

    /// The v1 SHA-1 piece hashes, in order (none for a v2-only torrent): read from
    /// the `info` bytes, not copied.
    pub fn pieces(&self) -> Pieces<'_> {
        Pieces {
            chunks: self
                .raw
                .get(self.pieces_at.clone())
                .unwrap_or_default()
                .chunks_exact(20),
        }
    }

    /// The exact bytes of the `info` dictionary.
    pub(crate) fn raw_info(&self) -> &[u8] {
        &self.raw
    }

    pub(crate) fn files_table(&self) -> &FileTable {
        &self.files
    }

    /// Heap bytes this `Info` holds (its `info` bytes, file table, names), without the
    /// geometry's two `u64` per file. For the cost report of `cargo xtask bench parse`.
    pub fn heap_len(&self) -> usize {
        self.raw.len()
            + self.files.heap_len()
            + self.name.capacity()
            + self.raw_name.capacity()
            + self.source.as_ref().map_or(0, String::capacity)
    }
}

impl fmt::Debug for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Info")
            .field("name", &self.name)
            .field("piece_len", &self.piece_len)
            .field("pieces", &self.pieces().len())
            .field("files", &self.files)
            .field("total_len", &self.total_len())
            .field("private", &self.private)
            .field("source", &self.source)
            .field("single_file", &self.single_file)
            .field("version", &self.version)
            .finish()
    }
}

/// The v1 piece hashes of a torrent: see [`Info::pieces`].
#[derive(Clone, Debug)]
pub struct Pieces<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8; 20];

    fn next(&mut self) -> Option<&'a [u8; 20]> {
        self.chunks.next().and_then(|c| c.try_into().ok())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<&'a [u8; 20]> {
        self.chunks.nth(n).and_then(|c| c.try_into().ok())
    }
}

impl ExactSizeIterator for Pieces<'_> {}

/// A parsed and validated `.torrent`.
#[derive(Clone, Debug)]
pub struct Metainfo {
    /// `announce`.
    pub announce: Option<String>,
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
    /// `announce-list` (BEP 12).
    announce_list: UrlTiers,
    /// `url-list` (BEP 19), one tier.
    web_seeds: UrlTiers,
}

fn sha256(data: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in data {
        h.update(d);
    }
    h.finalize().into()
}

/// The merkle root over `leaves`, padded with `pad` to a power of two. Allocates half
/// as many hashes as there are leaves (the padding is hashed, never stored).
pub(crate) fn merkle_root(leaves: &[[u8; 32]], pad: [u8; 32]) -> [u8; 32] {
    let Some(first) = leaves.first() else {
        return pad;
    };
    if leaves.len() == 1 {
        return *first;
    }
    let pair = |p: &[[u8; 32]], pad: &[u8; 32]| match p {
        [a, b] => sha256(&[a, b]),
        [a] => sha256(&[a, pad]),
        _ => *pad, // ok: chunks(2) gives one or two
    };
    let mut level: Vec<[u8; 32]> = leaves.chunks(2).map(|p| pair(p, &pad)).collect();
    let mut pad = sha256(&[&pad, &pad]);
    let mut width = leaves.len().next_power_of_two() / 2;
    while width > 1 {
        level = level.chunks(2).map(|p| pair(p, &pad)).collect();
        pad = sha256(&[&pad, &pad]);
        width /= 2;
    }
    level.first().copied().unwrap_or(pad)
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

fn opt_string(n: Option<Node<'_, '_>>) -> Option<String> {
    n.and_then(|n| n.value.as_bytes())
        .map(lossy_trimmed)
        .filter(|s| !s.is_empty())
}

/// An error of the check of the `info` bytes, placed in the whole input.
fn info_error(e: bt_bencode::Error, info_start: usize, raw_info: &[u8]) -> Error {
    let path = if e.path.is_empty() {
        "info".to_string()
    } else {
        format!("info.{}", e.path)
    };
    if e.kind == ErrorKind::DictDuplicateKey {
        let key = bt_bencode::ValueRef::at(raw_info, e.offset)
            .and_then(|k| k.as_bytes())
            .unwrap_or_default();
        return Error::DuplicateKey {
            key: format!("{path}.{}", key_name(key)),
            offset: e.offset + info_start,
        };
    }
    Error::Bencode(bt_bencode::Error::new(e.kind, e.offset + info_start, path))
}

impl Metainfo {
    /// Parses and validates a `.torrent` with the default [`LoadConfig`]. Trailing
    /// bytes after the top-level dictionary are ignored (as libtorrent and
    /// Transmission do); non-canonical bencode is accepted in v1 torrents and refused
    /// inside a v2 `info` dictionary.
    pub fn from_bytes(input: &[u8]) -> Result<Self> {
        Self::from_bytes_with(input, &LoadConfig::default())
    }

    /// [`Metainfo::from_bytes`] within the limits of `config`. Memory: about four
    /// times the input at most while parsing (see [`crate::limits`]); what is kept is
    /// the `info` bytes and a compact file table.
    pub fn from_bytes_with(input: &[u8], config: &LoadConfig) -> Result<Self> {
        // One checking pass that also refuses repeated keys anywhere: if it passes,
        // `info` holds none and needs no second look (unless v2 wants it strict). A
        // repeat somewhere means the lenient pass, and `info` checked on its own.
        let no_repeats = DecodeOptions {
            reject_duplicate_keys: true,
            ..config.decode_options()
        };
        let (root_value, repeats) = match no_repeats.decode_ref(input) {
            Ok(v) => (v, false),
            Err(e) if e.kind == ErrorKind::DictDuplicateKey => {
                (config.decode_options().decode_ref(input)?, true)
            }
            Err(e) => return Err(e.into()),
        };
        let doc = Doc::new(root_value, "torrent");
        let root = doc.root().dict()?;
        let [info_node, announce, announce_list, url_list, creation_date, comment, created_by, encoding, layers] =
            root.fields([
                "info",
                "announce",
                "announce-list",
                "url-list",
                "creation date",
                "comment",
                "created by",
                "encoding",
                "piece layers",
            ]);
        let info_node = info_node.ok_or_else(|| root.missing("info"))?;
        let info = info_node.dict()?;
        let info_span = info_node.value.span();
        let raw_info = info_node.value.raw();
        if raw_info.len() >= u32::MAX as usize {
            return Err(Error::LimitExceeded {
                limit: "max_input_len",
                what: "bytes of `info`",
                value: raw_info.len() as u64,
                max: u64::from(u32::MAX) - 1,
            });
        }
        let [meta_version, pieces_node, piece_length, name_utf8, name, private, source, file_tree, files_list, length, attr] =
            info.fields([
                "meta version",
                "pieces",
                "piece length",
                "name.utf-8",
                "name",
                "private",
                "source",
                "file tree",
                "files",
                "length",
                "attr",
            ]);

        let meta_version = match meta_version {
            Some(n) => match n.int()? {
                v @ (1 | 2) => Some(v),
                v => {
                    return Err(Error::UnsupportedMetaVersion {
                        value: v,
                        offset: n.offset(),
                    })
                }
            },
            None => None,
        };
        let has_v2 = meta_version == Some(2);
        let has_v1 = pieces_node.is_some() || !has_v2;
        // No key twice in any dictionary of `info` (clients disagree on which counts),
        // and BEP 52 torrents must be canonical bencode (libtorrent enforces it too).
        if has_v2 || repeats {
            let check = DecodeOptions {
                strict: has_v2,
                reject_duplicate_keys: true,
                max_depth: usize::MAX,
                max_input_len: usize::MAX,
                max_string_len: usize::MAX,
                max_tokens: usize::MAX,
            };
            check
                .decode_ref(raw_info)
                .map_err(|e| info_error(e, info_span.start, raw_info))?;
        }
        let info_hash = has_v1.then(|| InfoHash(Sha1::digest(raw_info).into()));
        let info_hash_v2 = has_v2.then(|| InfoHashV2(sha256(&[raw_info])));

        // piece length
        let pl_node = piece_length.ok_or_else(|| info.missing("piece length"))?;
        let pl = pl_node.int()?;
        let pl_err = |reason| Error::PieceLength {
            key: pl_node.key(),
            value: pl,
            offset: pl_node.offset(),
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
        let name_node = match name_utf8 {
            Some(n) if n.value.as_bytes().is_some() => n,
            _ => name.ok_or_else(|| info.missing("name"))?,
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
                    key: name_node.key(),
                    offset: name_node.offset(),
                    reason: "the name holds only control characters",
                });
            }
            sanitize_component(&raw_name)
        };

        let src = Source {
            doc: &doc,
            info_start: info_span.start,
            max_files: config.max_files,
        };
        let v1 = if has_v1 {
            Some(files::parse_v1(&src, &info, files_list, length, attr)?)
        } else {
            None
        };
        let v2 = if has_v2 {
            let tree = file_tree.ok_or_else(|| info.missing("file tree"))?;
            let pad_to = (!has_v1).then_some(piece_len);
            Some(files::parse_v2(&src, tree, &raw_name, pad_to)?)
        } else {
            None
        };
        let (built, version) = match (v1, v2) {
            (Some(v1), None) => (v1, MetaVersion::V1),
            (None, Some(v2)) => (v2, MetaVersion::V2),
            (Some(v1), Some(v2)) => (
                files::merge_hybrid(raw_info, &raw_name, v1, v2, piece_len)?,
                MetaVersion::Hybrid,
            ),
            (None, None) => {
                return Err(info.missing("pieces")); // ok: has_v1 || has_v2
            }
        };
        let single_file = built.single;
        let (mut table, lens) = built.finish();

        let geometry =
            Geometry::new(u64::from(piece_len), lens.iter().copied()).map_err(|e| match e {
                Error::PieceLength { .. } => pl_err("is out of range"),
                e => e,
            })?;
        drop(lens);
        if geometry.total_len() == 0 {
            return Err(Error::EmptyTorrent);
        }
        if geometry.num_pieces() > config.max_pieces {
            return Err(Error::LimitExceeded {
                limit: "max_pieces",
                what: "pieces",
                value: geometry.num_pieces().into(),
                max: config.max_pieces.into(),
            });
        }

        let mut pieces_at = 0..0;
        if has_v1 {
            let node = pieces_node.ok_or_else(|| info.missing("pieces"))?;
            let bytes = node.bytes()?;
            if bytes.len() % 20 != 0 {
                return Err(Error::PiecesNotMultipleOf20 {
                    len: bytes.len(),
                    offset: node.offset(),
                });
            }
            let found = (bytes.len() / 20) as u64;
            if found != u64::from(geometry.num_pieces()) {
                return Err(Error::PieceCountMismatch {
                    found,
                    expected: geometry.num_pieces().into(),
                    total_len: geometry.total_len(),
                    piece_len: piece_len.into(),
                    offset: node.offset(),
                });
            }
            // The string's bytes end where the value ends.
            let end = node.value.span().end - info_span.start;
            pieces_at = end - bytes.len()..end;
        }

        rename_duplicates(&mut table, raw_info, &name, single_file, &geometry)?;

        let piece_layers = match layers {
            Some(node) if has_v2 => {
                parse_piece_layers(&node, &table, raw_info, &geometry, piece_len)?
            }
            _ => BTreeMap::new(),
        };

        let private = private.and_then(|n| n.value.as_int()) == Some(1);
        let source = opt_string(source);

        let mut tiers = UrlTiers::default();
        if let Some(list) = announce_list.and_then(|n| n.value.as_list()) {
            let (mut urls, mut text) = (0, 0);
            for tier in list.iter() {
                for url in tier
                    .as_list()
                    .into_iter()
                    .flat_map(|l| l.iter())
                    .chain(Some(tier))
                {
                    if let Some(b) = url.as_bytes() {
                        urls += 1;
                        text += b.len();
                    }
                }
            }
            tiers.reserve_exact(list.len(), urls, text);
            for tier in list.iter() {
                let fits = match tier.as_list() {
                    Some(items) => tiers.push_tier(items.iter().filter_map(|v| v.as_bytes())),
                    // Some writers flatten the tiers into a list of strings.
                    None => tiers.push_tier(tier.as_bytes().into_iter()),
                };
                if !fits {
                    return Err(too_much_text(input.len()));
                }
            }
        }
        let mut web_seeds = UrlTiers::default();
        if let Some(v) = url_list.map(|n| n.value) {
            let seeds = v
                .as_list()
                .into_iter()
                .flat_map(|l| l.iter())
                .chain(Some(v));
            let (urls, text) = seeds
                .filter_map(|u| u.as_bytes())
                .fold((0, 0), |(n, t), b| (n + 1, t + b.len()));
            web_seeds.reserve_exact(1, urls, text);
            let fits = match v.as_list() {
                Some(items) => web_seeds.push_tier(items.iter().filter_map(|v| v.as_bytes())),
                None => web_seeds.push_tier(v.as_bytes().into_iter()),
            };
            if !fits {
                return Err(too_much_text(input.len()));
            }
        }
        tiers.shrink_to_fit();
        web_seeds.shrink_to_fit();

        Ok(Metainfo {
            announce: opt_string(announce),
            announce_list: tiers,
            web_seeds,
            creation_date: creation_date.and_then(|n| n.value.as_int()),
            comment: opt_string(comment),
            created_by: opt_string(created_by),
            encoding: opt_string(encoding),
            info: Info {
                name,
                raw_name,
                piece_len,
                private,
                source,
                single_file,
                version,
                geometry,
                // The only copy of the input that is kept, made last so that it does
                // not add to the parse's peak.
                raw: Arc::from(raw_info),
                pieces_at,
                files: table,
            },
            info_hash,
            info_hash_v2,
            piece_layers,
        })
    }

    /// The exact bytes of the `info` dictionary (what ut_metadata serves).
    pub fn raw_info(&self) -> &[u8] {
        self.info.raw_info()
    }

    /// `announce-list` (BEP 12): tiers in order; empty tiers and URLs are dropped, and
    /// a URL repeated within a tier. Built on each call.
    pub fn announce_list(&self) -> Vec<Vec<String>> {
        self.announce_list.to_vecs()
    }

    /// `url-list` web seeds (BEP 19), a string or a list in the file. Built on each
    /// call.
    pub fn web_seeds(&self) -> Vec<String> {
        self.web_seeds.urls().map(str::to_string).collect()
    }

    /// Trackers by tier: `announce-list` when it has any, else `announce` alone.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.to_vecs()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }

    /// A magnet link for this torrent: hashes, name, trackers, web seeds.
    pub fn magnet(&self) -> Magnet {
        let mut trackers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for url in self.trackers().into_iter().flatten() {
            if seen.insert(url.clone()) {
                trackers.push(url);
            }
        }
        Magnet {
            info_hash: self.info_hash,
            info_hash_v2: self.info_hash_v2,
            display_name: Some(self.info.name.clone()),
            trackers,
            web_seeds: self.web_seeds(),
            peers: Vec::new(),
            select_only: None,
        }
    }

    /// The v1 SHA-1 hash of `piece`, if the torrent has v1 metadata and the piece exists.
    pub fn piece_hash(&self, piece: crate::PieceIndex) -> Option<&[u8; 20]> {
        self.info.pieces().nth(piece.0 as usize)
    }

    /// Heap bytes this torrent holds while loaded (the `info` bytes, the file table,
    /// the geometry, trackers, layers and strings): what a daemon pays per torrent.
    pub fn heap_len(&self) -> usize {
        let strings = [
            &self.announce,
            &self.comment,
            &self.created_by,
            &self.encoding,
        ]
        .iter()
        .map(|s| s.as_ref().map_or(0, String::capacity))
        .sum::<usize>();
        let layers = self
            .piece_layers
            .values()
            .map(|v| 32 * v.capacity() + 64)
            .sum::<usize>();
        self.info.heap_len()
            + 16 * self.info.geometry.num_files()
            + self.announce_list.heap_len()
            + self.web_seeds.heap_len()
            + strings
            + layers
    }
}

/// Lists of URLs whose text outgrows 32-bit offsets.
fn too_much_text(len: usize) -> Error {
    Error::LimitExceeded {
        limit: "max_input_len",
        what: "bytes of input (URL text over 4 GiB)",
        value: len as u64,
        max: u64::from(u32::MAX),
    }
}

/// Renames duplicate paths like libtorrent (see [`crate::dedup`]); pad files are never
/// written, so they don't count. A single-file torrent has nothing to collide with.
fn rename_duplicates(
    table: &mut FileTable,
    raw_info: &[u8],
    name: &str,
    single_file: bool,
    geometry: &Geometry,
) -> Result<()> {
    if single_file {
        return Ok(());
    }
    let mut keys = Keys::default();
    let mut elements = Vec::new();
    for i in 0..table.len() {
        if table.is_pad(i) {
            continue;
        }
        elements.clear();
        let len = geometry.file_len(i).unwrap_or(0); // ok: the geometry has every file
        table.raw_elements(raw_info, i, len, &mut elements);
        keys.start(i);
        for e in &elements {
            keys.push_element(&sanitize_component_cow(e));
        }
        if !keys.fits() {
            return Err(Error::LimitExceeded {
                limit: "max_input_len",
                what: "bytes of file paths (over 4 GiB)",
                value: u64::from(u32::MAX),
                max: u64::from(u32::MAX),
            });
        }
    }
    let path_of = |i: usize| {
        let mut raw = Vec::new();
        let len = geometry.file_len(i).unwrap_or(0); // ok: the geometry has every file
        table.raw_elements(raw_info, i, len, &mut raw);
        let mut p = vec![name.to_string()];
        p.extend(raw.iter().map(|e| sanitize_component(e)));
        p
    };
    let renames = dedup::renames(
        &keys,
        MAX_DUPLICATE_COLLISIONS,
        |i| path_of(i).pop().unwrap_or_default(),
        |i| path_of(i).join("/"),
    )?;
    drop(keys);
    for (i, new_name) in renames {
        table.rename(i, &new_name);
    }
    Ok(())
}

/// BEP 52 `piece layers`: every entry must belong to a file of the torrent, hold a
/// whole number of SHA-256 hashes, one per piece of that file, and hash up to the
/// file's pieces root. Files may lack an entry (libtorrent accepts that).
fn parse_piece_layers(
    node: &Node<'_, '_>,
    table: &FileTable,
    raw_info: &[u8],
    geometry: &Geometry,
    piece_len: u32,
) -> Result<BTreeMap<[u8; 32], Vec<[u8; 32]>>> {
    let layers: DictNode<'_, '_> = node.dict()?;
    let mut lengths: Vec<([u8; 32], u64)> = (0..table.len())
        .filter_map(|i| Some((table.pieces_root_of(raw_info, i)?, geometry.file_len(i)?)))
        .collect();
    lengths.sort_unstable();
    let pad = piece_pad_hash(piece_len);
    let mut out = BTreeMap::new();
    for (key, _, value) in layers.entries() {
        let err = |reason: String| Error::InvalidPieceLayer {
            root: hex::encode(key),
            offset: value.offset(),
            reason,
        };
        let root: [u8; 32] = key
            .try_into()
            .map_err(|_| err(format!("key is {} bytes, not 32", key.len())))?;
        let Ok(at) = lengths.binary_search_by(|(r, _)| r.cmp(&root)) else {
            return Err(err("matches no file's pieces root".into()));
        };
        let file_len = lengths.get(at).map_or(0, |l| l.1);
        let bytes = value.bytes()?;
        if bytes.len() % 32 != 0 {
            return Err(err(format!(
                "{} bytes is not a multiple of 32",
                bytes.len()
            )));
        }
        let expected = file_len.div_ceil(u64::from(piece_len));
        if (bytes.len() / 32) as u64 != expected {
            return Err(err(format!(
                "{} hashes for a file of {expected} pieces",
                bytes.len() / 32
            )));
        }
        let hashes: Vec<[u8; 32]> = bytes
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
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
        assert_eq!(m.info.files().get(0).unwrap().path(), vec!["a.bin"]);
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
        let paths: Vec<String> = m.info.files().iter().map(|f| f.display_path()).collect();
        assert_eq!(
            paths,
            vec![
                format!("{name}/_/C_evil/a_b_c"),
                format!("{name}/dup/x.txt"),
                format!("{name}/DUP/X.1.TXT"),
                format!("{name}/dup.1"),
            ]
        );
        assert_eq!(m.info.files().get(0).unwrap().raw_path()[1], &b".."[..]);
        assert_eq!(m.info.raw_name, b"..");
        let base = std::path::Path::new("/dl");
        for f in m.info.files() {
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
